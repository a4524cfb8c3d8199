using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Bench;

/// <summary>Times each convolution primitive of the reference CNN's second layer separately.</summary>
internal static class ConvProbe
{
    public static void Run()
    {
        var b = new CpuBackend(2);
        var g = new ConvGeometry(64, 32, 14, 14, 64, 5, 5, 1, 1, 2, 2);
        var x = b.Allocate(new TensorShape(64, 32, 14, 14));
        var w = b.Allocate(new TensorShape(64, 32, 5, 5));
        var bias = b.Allocate(new TensorShape(64));
        var y = b.Allocate(new TensorShape(64, 64, 14, 14));
        var dx = b.Allocate(x.Shape);
        double gflop = 2.0 * 64 * 800 * 196 * 64 / 1e9;
        double f = GemmBenchmark.Time(() => b.ConvForward(g, x, w, bias, y));
        double d = GemmBenchmark.Time(() => b.ConvBackwardData(g, y, w, dx));
        double wt = GemmBenchmark.Time(() => b.ConvBackwardWeights(g, x, y, w, bias));
        var pg = new PoolGeometry(64, 32, 28, 28, 2, 2, 2, 2, 0, 0);
        var px = b.Allocate(new TensorShape(64, 32, 28, 28));
        var pdx = b.Allocate(new TensorShape(64, 32, 28, 28));
        var rnd = new Random(1);
        px.CopyFrom(Enumerable.Range(0, px.Length).Select(_ => (float)rnd.NextDouble()).ToArray());
        var py = b.Allocate(new TensorShape(64, 32, 14, 14));
        double pf = GemmBenchmark.Time(() => b.MaxPoolForward(pg, px, py));
        double pb = GemmBenchmark.Time(() => b.MaxPoolBackward(pg, px, py, pdx));
        Console.WriteLine($"pool1 forward {pf * 1e3:F2} ms, backward {pb * 1e3:F2} ms");
        var cols = new float[800 * 26 * 196];
        var xs = new float[32 * 196 * 64];
        double u = GemmBenchmark.Time(() => { for (int i = 0; i < 26; i++) Im2Col.Unfold(g, xs.AsSpan(i * 32 * 196, 32 * 196), cols, i * 196, 26 * 196); });
        Console.WriteLine($"unfold of a 26-image chunk, one thread: {u * 1e3:F2} ms");
        Console.WriteLine($"conv2 forward {f * 1e3:F2} ms ({gflop / f:F0} GF/s), backward-data {d * 1e3:F2} ms ({gflop / d:F0}), backward-weights {wt * 1e3:F2} ms ({gflop / wt:F0})");
    }
}
