using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Bench;

/// <summary>
/// Times each pass of the reference CNN's two convolutions separately (forward, backward-data, weight gradient with
/// the bias), naming the kernels that run them, as GFLOP/s and as a fraction of this CPU's peak.
/// </summary>
internal static class ConvProbe
{
    public static void Run(double peakPerCore)
    {
        const int threads = 2;
        var backend = new CpuBackend(threads);
        Probe(backend, "conv 5×5 1→32 on 28×28", new ConvGeometry(64, 1, 28, 28, 32, 5, 5, 1, 1, 2, 2), peakPerCore * threads);
        Probe(backend, "conv 5×5 32→64 on 14×14", new ConvGeometry(64, 32, 14, 14, 64, 5, 5, 1, 1, 2, 2), peakPerCore * threads);
    }

    private static void Probe(CpuBackend backend, string name, ConvGeometry g, double peak)
    {
        var rng = new Random(1);
        Tensor Filled(params int[] shape)
        {
            var t = backend.Allocate(new TensorShape(shape));
            t.CopyFrom(Enumerable.Range(0, t.Length).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray());
            return t;
        }
        var x = Filled(g.Batch, g.InChannels, g.InH, g.InW);
        var w = Filled(g.OutChannels, g.InChannels, g.KernelH, g.KernelW);
        var bias = Filled(g.OutChannels);
        var y = Filled(g.Batch, g.OutChannels, g.OutH, g.OutW);
        var dx = backend.Allocate(x.Shape);
        var dw = backend.Allocate(w.Shape);
        var db = backend.Allocate(bias.Shape);
        double gflop = 2.0 * g.Batch * g.OutChannels * g.OutH * g.OutW * g.PatchSize / 1e9;
        string Kernel(in ConvGeometry c) => WinogradConvolution.Applies(c) ? "Winograd" : DirectConvolution.Applies(c) ? "direct" : "im2col + GEMM";
        string forward = Kernel(g);
        string data = DirectConvolution.DataGradientGeometry(g) is { } transposed ? Kernel(transposed) : "im2col + GEMM";
        string weights = WinogradConvolution.Applies(g) ? "Winograd" : DirectConvolution.AppliesToWeightGradient(g) ? "direct" : "im2col + GEMM";
        Console.WriteLine($"{name}, batch {g.Batch}, 2 threads, {DirectConvolution.Bits}-bit kernels: forward {forward}, backward-data {data}, " +
            $"weight gradient {weights} ({gflop:F2} GFLOP per pass as a direct convolution):");
        foreach (var (pass, action) in new (string, Action)[]
        {
            ("forward", () => backend.ConvForward(g, x, w, bias, y)),
            ("backward-data", () => backend.ConvBackwardData(g, y, w, dx)),
            ("weight gradient + bias", () => backend.ConvBackwardWeights(g, x, y, dw, db)),
        })
        {
            double seconds = GemmBenchmark.Time(action);
            Console.WriteLine($"  {pass,-24} {seconds * 1e3,7:F2} ms  {gflop / seconds,6:F0} GFLOP/s equivalent, {gflop / seconds / peak:P0} of peak");
        }
    }
}
