namespace Ml.Cnn.Core;

/// <summary>
/// Where each output index along one axis samples its input when a length <c>inSize</c> is resized to
/// <c>outSize</c>, by PyTorch's rules (area_pixel_compute_source_index with align_corners = false): the two source
/// indices and the second one's weight. The one definition that upsampling and the scene generator's resize share.
/// </summary>
internal static class Interpolation
{
    /// <summary>Bilinear: the half-pixel centre (o + ½) · in/out − ½, clamped at 0, between its two neighbours.</summary>
    public static (int I0, int I1, float Lambda)[] BilinearTaps(int inSize, int outSize)
    {
        var taps = new (int, int, float)[outSize];
        float scale = (float)inSize / outSize;
        for (int o = 0; o < outSize; o++)
        {
            float source = Math.Max(scale * (o + 0.5f) - 0.5f, 0);
            int i0 = Math.Min((int)source, inSize - 1);
            int i1 = Math.Min(i0 + 1, inSize - 1);
            taps[o] = (i0, i1, i1 == i0 ? 0 : source - i0);
        }
        return taps;
    }

    /// <summary>Nearest: source index ⌊o · in/out⌋, all weight on it.</summary>
    public static (int I0, int I1, float Lambda)[] NearestTaps(int inSize, int outSize)
    {
        var taps = new (int, int, float)[outSize];
        float scale = (float)inSize / outSize;
        for (int o = 0; o < outSize; o++)
        {
            int i = Math.Min((int)MathF.Floor(o * scale), inSize - 1);
            taps[o] = (i, i, 0);
        }
        return taps;
    }

    /// <summary>Bilinear resize of [channels, h, w] planes to [channels, outH, outW].</summary>
    public static float[] ResizeBilinear(ReadOnlySpan<float> planes, int channels, int h, int w, int outH, int outW)
    {
        var result = new float[channels * outH * outW];
        var (rows, cols) = (BilinearTaps(h, outH), BilinearTaps(w, outW));
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < outH; y++)
                for (int x = 0; x < outW; x++)
                {
                    var ((y0, y1, ly), (x0, x1, lx)) = (rows[y], cols[x]);
                    var p = planes.Slice(c * h * w, h * w);
                    result[(c * outH + y) * outW + x] = (1 - ly) * ((1 - lx) * p[y0 * w + x0] + lx * p[y0 * w + x1]) +
                                                        ly * ((1 - lx) * p[y1 * w + x0] + lx * p[y1 * w + x1]);
                }
        return result;
    }
}
