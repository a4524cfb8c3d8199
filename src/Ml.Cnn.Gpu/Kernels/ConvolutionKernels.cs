using ILGPU;

namespace Ml.Cnn.Gpu.Kernels;

/// <summary>
/// The data rearrangements that turn convolutions into GEMMs (Caffe's im2col). A chunk of <c>Items</c> images from
/// <c>FirstItem</c> on is laid out as col [C·kh·kw, Items·P] (P = OH·OW output pixels), so one GEMM per group covers the
/// whole chunk; <see cref="Col2Im"/> gathers instead of scattering, so no two threads write one element.
/// </summary>
internal static class ConvolutionKernels
{
    /// <summary>i runs over C·kh·kw rows × Items·P columns of col.</summary>
    public static void Im2Col(Index1D i, ArrayView<float> x, ArrayView<float> col, ConvArgs g)
    {
        int pixels = g.OutH * g.OutW, columns = g.Items * pixels;
        int column = (int)(i % columns), row = (int)(i / columns);
        int kx = row % g.KernelW, ky = row / g.KernelW % g.KernelH, c = row / (g.KernelW * g.KernelH);
        int item = column / pixels, pixel = column % pixels, ox = pixel % g.OutW, oy = pixel / g.OutW;
        int iy = oy * g.StrideH - g.PadH + ky * g.DilationH, ix = ox * g.StrideW - g.PadW + kx * g.DilationW;
        col[i] = iy >= 0 && iy < g.InH && ix >= 0 && ix < g.InW
            ? x[(((long)(g.FirstItem + item) * g.InChannels + c) * g.InH + iy) * g.InW + ix] : 0;
    }

    /// <summary>dx[n, c, iy, ix] ← Σ of the col entries that read it; i runs over the chunk's Items·C·H·W.</summary>
    public static void Col2Im(Index1D i, ArrayView<float> col, ArrayView<float> dx, ConvArgs g)
    {
        int pixels = g.OutH * g.OutW, columns = g.Items * pixels;
        int ix = (int)(i % g.InW), iy = (int)(i / g.InW % g.InH), c = (int)(i / ((long)g.InW * g.InH) % g.InChannels);
        int item = (int)(i / ((long)g.InW * g.InH * g.InChannels));
        float sum = 0;
        for (int ky = 0; ky < g.KernelH; ky++)
        {
            int ty = iy + g.PadH - ky * g.DilationH;
            if (ty < 0 || ty % g.StrideH != 0 || ty / g.StrideH >= g.OutH) continue;
            for (int kx = 0; kx < g.KernelW; kx++)
            {
                int tx = ix + g.PadW - kx * g.DilationW;
                if (tx < 0 || tx % g.StrideW != 0 || tx / g.StrideW >= g.OutW) continue;
                int row = (c * g.KernelH + ky) * g.KernelW + kx;
                sum += col[(long)row * columns + item * pixels + ty / g.StrideH * g.OutW + tx / g.StrideW];
            }
        }
        dx[(long)g.FirstItem * g.InChannels * g.InH * g.InW + i] = sum;
    }

    /// <summary>
    /// Between NCHW outputs and the GEMM's channel-major [Cout, Items·P]: <paramref name="toChannelMajor"/> gathers dy
    /// for the backward passes; otherwise y ← the product plus the bias (when <paramref name="hasBias"/>).
    /// i runs over Cout × Items·P.
    /// </summary>
    public static void Transpose(Index1D i, ArrayView<float> nchw, ArrayView<float> channelMajor, ArrayView<float> bias,
        ConvArgs g, int toChannelMajor, int hasBias)
    {
        int pixels = g.OutH * g.OutW, columns = g.Items * pixels;
        int oc = (int)(i / columns), column = (int)(i % columns), item = column / pixels, pixel = column % pixels;
        long index = ((long)(g.FirstItem + item) * g.OutChannels + oc) * pixels + pixel;
        if (toChannelMajor != 0) channelMajor[i] = nchw[index];
        else nchw[index] = channelMajor[i] + (hasBias != 0 ? bias[oc] : 0);
    }
}

/// <summary>A convolution's geometry and the chunk of items one launch covers.</summary>
internal struct ConvArgs
{
    public int InChannels, InH, InW, OutChannels, OutH, OutW;
    public int KernelH, KernelW, StrideH, StrideW, PadH, PadW, DilationH, DilationW;
    public int FirstItem, Items;
}
