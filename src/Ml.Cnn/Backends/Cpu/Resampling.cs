using Ml.Cnn.Core;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Nearest and bilinear upsampling of [N, C, h, w] planes to [N, C, H, W], one plane per task, in two separable
/// passes through a [h, W] scratch: along each row, then between rows. The forward pass does the reference's
/// arithmetic in its order ((1 − ly)·row₀ + ly·row₁ of (1 − lx)·a + lx·b), so it agrees to the bit; the backward
/// pass is its adjoint, the same taps walked back.
/// </summary>
internal static class Resampling
{
    [ThreadStatic] private static float[]? t_rows;

    public static void Forward(UpsampleMode mode, float[] small, float[] big, int planes, int h, int w, int outH, int outW, int threads)
    {
        var (rowTaps, columnTaps) = (Taps(mode, h, outH), Taps(mode, w, outW));
        CpuWork.For(planes, threads, plane =>
        {
            var rows = CpuWork.Scratch(ref t_rows, h * outW);
            var source = small.AsSpan(plane * h * w, h * w);
            for (int y = 0; y < h; y++)
                for (int ox = 0; ox < outW; ox++)
                {
                    var (x0, x1, lx) = columnTaps[ox];
                    rows[y * outW + ox] = (1 - lx) * source[y * w + x0] + lx * source[y * w + x1];
                }
            var output = big.AsSpan(plane * outH * outW, outH * outW);
            for (int oy = 0; oy < outH; oy++)
            {
                var (y0, y1, ly) = rowTaps[oy];
                Span<float> top = rows.AsSpan(y0 * outW, outW), bottom = rows.AsSpan(y1 * outW, outW), line = output.Slice(oy * outW, outW);
                for (int ox = 0; ox < outW; ox++) line[ox] = (1 - ly) * top[ox] + ly * bottom[ox];
            }
        });
    }

    /// <summary>dSmall = the adjoint of <see cref="Forward"/> applied to dBig (dSmall is overwritten).</summary>
    public static void Backward(UpsampleMode mode, float[] dBig, float[] dSmall, int planes, int h, int w, int outH, int outW, int threads)
    {
        var (rowTaps, columnTaps) = (Taps(mode, h, outH), Taps(mode, w, outW));
        CpuWork.For(planes, threads, plane =>
        {
            var rows = CpuWork.Scratch(ref t_rows, h * outW).AsSpan(0, h * outW);
            rows.Clear();
            var gradient = dBig.AsSpan(plane * outH * outW, outH * outW);
            for (int oy = 0; oy < outH; oy++)
            {
                var (y0, y1, ly) = rowTaps[oy];
                Span<float> top = rows.Slice(y0 * outW, outW), bottom = rows.Slice(y1 * outW, outW), line = gradient.Slice(oy * outW, outW);
                for (int ox = 0; ox < outW; ox++)
                {
                    top[ox] += (1 - ly) * line[ox];
                    bottom[ox] += ly * line[ox];
                }
            }
            var target = dSmall.AsSpan(plane * h * w, h * w);
            target.Clear();
            for (int y = 0; y < h; y++)
                for (int ox = 0; ox < outW; ox++)
                {
                    var (x0, x1, lx) = columnTaps[ox];
                    float g = rows[y * outW + ox];
                    target[y * w + x0] += (1 - lx) * g;
                    target[y * w + x1] += lx * g;
                }
        });
    }

    private static (int I0, int I1, float Lambda)[] Taps(UpsampleMode mode, int inSize, int outSize) =>
        mode == UpsampleMode.Nearest ? Interpolation.NearestTaps(inSize, outSize) : Interpolation.BilinearTaps(inSize, outSize);
}
