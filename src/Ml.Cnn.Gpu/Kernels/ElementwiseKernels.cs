using ILGPU;
using Ml.Cnn.Core;

namespace Ml.Cnn.Gpu.Kernels;

/// <summary>
/// One thread per element: data movement, arithmetic, the activations, dropout and the optimizer updates. Each is the
/// reference backend's formula in float, so the CPU accelerator and a GPU agree with it to rounding.
/// </summary>
internal static class ElementwiseKernels
{
    public static void Fill(Index1D i, ArrayView<float> y, float value) => y[i] = value;

    public static void Add(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) => y[i] = a[i] + b[i];

    public static void Axpy(Index1D i, float alpha, ArrayView<float> x, ArrayView<float> y) => y[i] += alpha * x[i];

    public static void Scale(Index1D i, ArrayView<float> y, float factor) => y[i] *= factor;

    /// <summary>y[n, c, p] += bias[c] over a tensor whose items hold <paramref name="channels"/> planes of plane pixels.</summary>
    public static void AddChannelBias(Index1D i, ArrayView<float> bias, ArrayView<float> y, int channels, int plane) =>
        y[i] += bias[i / plane % channels];

    /// <summary>Copies <c>channels</c> planes per item; i runs over items × channels × plane.</summary>
    public static void CopyChannels(Index1D i, ArrayView<float> src, ArrayView<float> dst, ChannelCopy c)
    {
        int p = i % c.Plane, ch = i / c.Plane % c.Channels, n = i / (c.Plane * c.Channels);
        dst[(n * c.DstChannels + c.DstOffset + ch) * c.Plane + p] = src[(n * c.SrcChannels + c.SrcOffset + ch) * c.Plane + p];
    }

    /// <summary>Copies a window of every plane; i runs over planes × height × width of the window.</summary>
    public static void CopyWindow(Index1D i, ArrayView<float> src, ArrayView<float> dst, WindowCopy w)
    {
        int x = i % w.Width, y = i / w.Width % w.Height, plane = i / (w.Width * w.Height);
        dst[(plane * w.DstH + w.DstY + y) * w.DstW + w.DstX + x] = src[(plane * w.SrcH + w.SrcY + y) * w.SrcW + w.SrcX + x];
    }

    public static void Activation(Index1D i, ArrayView<float> x, ArrayView<float> y, int kind, float alpha, float beta) =>
        y[i] = Activate(kind, x[i], alpha, beta);

    public static void ActivationGradient(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx,
        int kind, float alpha, float beta) => dx[i] = Slope(kind, x[i], y[i], alpha, beta) * dy[i];

    // The ActivationKind order: Relu, LeakyRelu, Elu, Sigmoid, Tanh, Clip, HardSigmoid, HardSwish, Silu, Gelu.
    private static float Activate(int kind, float v, float alpha, float beta) => kind switch
    {
        0 => v > 0 ? v : 0,
        1 => v > 0 ? v : alpha * v,
        2 => v > 0 ? v : alpha * (MathF.Exp(v) - 1),
        3 => Sigmoid(v),
        4 => Tanh(v),
        5 => Clamp(v, alpha, beta),
        6 => Clamp(alpha * v + beta, 0, 1),
        7 => v * Clamp(v / 6 + 0.5f, 0, 1),
        8 => v * Sigmoid(v),
        _ => SpecialFunctions.Gelu(v),
    };

    // PyTorch's conventions at the kinks: the flat side's slope.
    private static float Slope(int kind, float v, float fv, float alpha, float beta)
    {
        switch (kind)
        {
            case 0: return v > 0 ? 1 : 0;
            case 1: return v > 0 ? 1 : alpha;
            case 2: return v > 0 ? 1 : alpha * MathF.Exp(v);
            case 3: return fv * (1 - fv);
            case 4: return 1 - fv * fv;
            case 5: return v > alpha && v < beta ? 1 : 0;
            case 6: { float z = alpha * v + beta; return z > 0 && z < 1 ? alpha : 0; }
            case 7: return v < -3 ? 0 : v <= 3 ? v / 3 + 0.5f : 1;
            case 8: { float s = Sigmoid(v); return s * (1 + v * (1 - s)); }
            default: return SpecialFunctions.GeluSlope(v);
        }
    }

    internal static float Sigmoid(float v) => 1 / (1 + MathF.Exp(-v));

    // From exp alone (exact at the saturated ends), since not every ILGPU backend maps tanh.
    private static float Tanh(float v)
    {
        if (v > 15) return 1;
        if (v < -15) return -1;
        float e = MathF.Exp(2 * v);
        return (e - 1) / (e + 1);
    }

    private static float Clamp(float v, float lo, float hi) => v < lo ? lo : v > hi ? hi : v;

    /// <summary>y ← a ⊙ b, b broadcast over planes of <paramref name="plane"/> elements (1: equal shapes).</summary>
    public static void Multiply(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int plane) =>
        y[i] = a[i] * b[i / plane];

    /// <summary>Inverted dropout with the CPU backends' counter hash of (seed, index): the same units drop everywhere.</summary>
    public static void Dropout(Index1D i, ArrayView<float> x, ArrayView<float> y, float p, ulong seed)
    {
        ulong z = seed + (ulong)(i.X + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        y[i] = (z >> 40) * (1.0f / (1 << 24)) >= p ? x[i] * (1 / (1 - p)) : 0;
    }

    public static void Sgd(Index1D i, ArrayView<float> param, ArrayView<float> grad, ArrayView<float> velocity, SgdStep s)
    {
        float d = grad[i] + s.WeightDecay * param[i];
        if (s.Momentum != 0)
        {
            float v = s.Momentum * velocity[i] + d;
            velocity[i] = v;
            d = s.Nesterov != 0 ? d + s.Momentum * v : v;
        }
        param[i] -= s.LearningRate * d;
    }

    public static void Adam(Index1D i, ArrayView<float> param, ArrayView<float> grad, ArrayView<float> m, ArrayView<float> v, AdamStep s)
    {
        float d = grad[i];
        if (s.Decoupled != 0) param[i] *= 1 - s.LearningRate * s.WeightDecay;
        else d += s.WeightDecay * param[i];
        float mi = s.Beta1 * m[i] + (1 - s.Beta1) * d, vi = s.Beta2 * v[i] + (1 - s.Beta2) * d * d;
        m[i] = mi;
        v[i] = vi;
        double denom = Math.Sqrt(vi) / s.BiasCorrection2Sqrt + s.Epsilon;
        param[i] -= (float)(s.LearningRate / s.BiasCorrection1 * mi / denom);
    }
}

internal struct ChannelCopy
{
    public int Plane, Channels, SrcChannels, SrcOffset, DstChannels, DstOffset;
}

internal struct WindowCopy
{
    public int Width, Height, SrcH, SrcW, SrcY, SrcX, DstH, DstW, DstY, DstX;
}

internal struct SgdStep
{
    public float LearningRate, Momentum, WeightDecay;
    public int Nesterov;
}

internal struct AdamStep
{
    public float LearningRate, Beta1, Beta2, Epsilon, WeightDecay;
    public double BiasCorrection1, BiasCorrection2Sqrt;
    public int Decoupled;
}
