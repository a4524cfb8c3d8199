using System.Numerics;
using System.Runtime.InteropServices;
using Ml.Cnn.Core;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>Pointwise nonlinearities over a span; ReLU-family and clip loops are vectorized, the others scalar.</summary>
internal static class ActivationKernels
{
    public static void Forward(ActivationKind kind, float alpha, float beta, ReadOnlySpan<float> x, Span<float> y)
    {
        switch (kind)
        {
            case ActivationKind.Relu:
            case ActivationKind.LeakyRelu:
            {
                float negativeSlope = kind == ActivationKind.Relu ? 0 : alpha;
                int i = 0;
                var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
                var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
                var slope = new Vector<float>(negativeSlope);
                for (; i < vx.Length; i++)
                    vy[i] = Vector.ConditionalSelect(Vector.GreaterThan(vx[i], Vector<float>.Zero), vx[i], vx[i] * slope);
                for (i *= Vector<float>.Count; i < x.Length; i++) y[i] = x[i] > 0 ? x[i] : x[i] * negativeSlope;
                break;
            }
            case ActivationKind.Elu:
                for (int i = 0; i < x.Length; i++) y[i] = x[i] > 0 ? x[i] : alpha * (MathF.Exp(x[i]) - 1);
                break;
            case ActivationKind.Sigmoid:
                for (int i = 0; i < x.Length; i++) y[i] = 1 / (1 + MathF.Exp(-x[i]));
                break;
            case ActivationKind.Tanh:
                for (int i = 0; i < x.Length; i++) y[i] = MathF.Tanh(x[i]);
                break;
            case ActivationKind.Clip:
            {
                int i = 0;
                var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
                var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
                var (low, high) = (new Vector<float>(alpha), new Vector<float>(beta));
                for (; i < vx.Length; i++) vy[i] = Vector.Min(Vector.Max(vx[i], low), high);
                for (i *= Vector<float>.Count; i < x.Length; i++) y[i] = MathF.Min(MathF.Max(x[i], alpha), beta);
                break;
            }
            case ActivationKind.HardSigmoid:
                for (int i = 0; i < x.Length; i++) y[i] = Math.Clamp(alpha * x[i] + beta, 0, 1);
                break;
            case ActivationKind.HardSwish:
                for (int i = 0; i < x.Length; i++) y[i] = x[i] * Math.Clamp(x[i] / 6 + 0.5f, 0, 1);
                break;
            case ActivationKind.Silu:
                for (int i = 0; i < x.Length; i++) y[i] = x[i] / (1 + MathF.Exp(-x[i]));
                break;
            case ActivationKind.Gelu:
                for (int i = 0; i < x.Length; i++) y[i] = SpecialFunctions.Gelu(x[i]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }

    public static void Backward(ActivationKind kind, float alpha, float beta, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy,
        Span<float> dx)
    {
        switch (kind)
        {
            case ActivationKind.Relu:
            case ActivationKind.LeakyRelu:
            {
                float negativeSlope = kind == ActivationKind.Relu ? 0 : alpha;
                int i = 0;
                var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
                var vdy = MemoryMarshal.Cast<float, Vector<float>>(dy);
                var vdx = MemoryMarshal.Cast<float, Vector<float>>(dx);
                var slope = new Vector<float>(negativeSlope);
                for (; i < vx.Length; i++)
                    vdx[i] = Vector.ConditionalSelect(Vector.GreaterThan(vx[i], Vector<float>.Zero), vdy[i], vdy[i] * slope);
                for (i *= Vector<float>.Count; i < x.Length; i++) dx[i] = x[i] > 0 ? dy[i] : dy[i] * negativeSlope;
                break;
            }
            case ActivationKind.Elu:
                for (int i = 0; i < x.Length; i++) dx[i] = x[i] > 0 ? dy[i] : dy[i] * (y[i] + alpha);
                break;
            case ActivationKind.Sigmoid:
                for (int i = 0; i < x.Length; i++) dx[i] = dy[i] * y[i] * (1 - y[i]);
                break;
            case ActivationKind.Tanh:
                for (int i = 0; i < x.Length; i++) dx[i] = dy[i] * (1 - y[i] * y[i]);
                break;
            // At the kinks, PyTorch's conventions: the flat side's slope.
            case ActivationKind.Clip:
            {
                int i = 0;
                var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
                var vdy = MemoryMarshal.Cast<float, Vector<float>>(dy);
                var vdx = MemoryMarshal.Cast<float, Vector<float>>(dx);
                var (low, high) = (new Vector<float>(alpha), new Vector<float>(beta));
                for (; i < vx.Length; i++)
                    vdx[i] = Vector.ConditionalSelect(Vector.GreaterThan(vx[i], low) & Vector.LessThan(vx[i], high), vdy[i], Vector<float>.Zero);
                for (i *= Vector<float>.Count; i < x.Length; i++) dx[i] = x[i] > alpha && x[i] < beta ? dy[i] : 0;
                break;
            }
            case ActivationKind.HardSigmoid:
                for (int i = 0; i < x.Length; i++) dx[i] = alpha * x[i] + beta is > 0 and < 1 ? dy[i] * alpha : 0;
                break;
            case ActivationKind.HardSwish:
                for (int i = 0; i < x.Length; i++) dx[i] = x[i] < -3 ? 0 : x[i] <= 3 ? dy[i] * (x[i] / 3 + 0.5f) : dy[i];
                break;
            case ActivationKind.Silu:
                for (int i = 0; i < x.Length; i++)
                {
                    float s = 1 / (1 + MathF.Exp(-x[i]));
                    dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
                }
                break;
            case ActivationKind.Gelu:
                for (int i = 0; i < x.Length; i++) dx[i] = dy[i] * SpecialFunctions.GeluSlope(x[i]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }
}
