using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Bench;

/// <summary>
/// Times each pass of the reference CNN's two convolutions (with `conv resnet18`: ResNet-18's stride-1 3×3 layers at
/// 3×64×64) separately (forward, backward-data, weight gradient with the bias), naming the kernels that run them, as
/// GFLOP/s and as a fraction of this CPU's peak.
/// </summary>
internal static class ConvProbe
{
    public static void Run(double peakPerCore, string set)
    {
        const int threads = 2;
        var backend = new CpuBackend(threads);
        double peak = peakPerCore * threads;
        if (set == "resnet18")
        {
            // ResNet-18's stride-1 3×3 layers at 3×64×64: the deepest stages run on 8², 4² and 2² maps.
            foreach (var (channels, size) in new[] { (64, 16), (128, 8), (256, 4), (512, 2) })
                Probe(backend, $"conv 3×3 {channels}→{channels} on {size}×{size}",
                    new ConvGeometry(32, channels, size, size, channels, 3, 3, 1, 1, 1, 1), peak);
            return;
        }
        Probe(backend, "conv 5×5 1→32 on 28×28", new ConvGeometry(64, 1, 28, 28, 32, 5, 5, 1, 1, 2, 2), peak);
        Probe(backend, "conv 5×5 32→64 on 14×14", new ConvGeometry(64, 32, 14, 14, 64, 5, 5, 1, 1, 2, 2), peak);
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
        string Kernel(in ConvGeometry c) => WinogradConvolution.Applies(c) ? (WinogradConvolution.BatchWide(c) ? "batch-wide Winograd" : "Winograd") : DirectConvolution.Applies(c) ? "direct" : "im2col + GEMM";
        string forward = Kernel(g);
        string data = DirectConvolution.DataGradientGeometry(g) is { } transposed ? Kernel(transposed) : "im2col + GEMM";
        string weights = WinogradConvolution.Applies(g) ? Kernel(g) : DirectConvolution.AppliesToWeightGradient(g) ? "direct" : "im2col + GEMM";
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
