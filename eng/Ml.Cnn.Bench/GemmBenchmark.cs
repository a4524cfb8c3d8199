using System.Diagnostics;
using Ml.Cnn.Backends.Cpu;

namespace Ml.Cnn.Bench;

/// <summary>SGEMM GFLOP/s, ours beside OpenBLAS, on square sizes and on the reference CNN's GEMM shapes.</summary>
internal static class GemmBenchmark
{
    private static readonly (string Name, int M, int N, int K, bool TransA, bool TransB)[] Shapes =
    [
        ("128³", 128, 128, 128, false, false),
        ("256³", 256, 256, 256, false, false),
        ("512³", 512, 512, 512, false, false),
        ("1024³", 1024, 1024, 1024, false, false),
        ("2048³", 2048, 2048, 2048, false, false),
        ("conv1 fwd (per image)", 32, 784, 25, false, false),
        ("conv2 fwd (per image)", 64, 196, 800, false, false),
        ("conv2 bwd-data (per image)", 800, 196, 64, true, false),
        ("conv2 bwd-weights (per image)", 64, 800, 196, false, true),
        ("conv2 fwd (26-image chunk)", 64, 5096, 800, false, false),
        ("conv2 bwd-data (26-image chunk)", 800, 5096, 64, true, false),
        ("conv2 bwd-weights (26-image chunk)", 64, 800, 5096, false, true),
        ("fc1 fwd (batch 64)", 64, 1024, 3136, false, true),
        ("fc1 bwd-data", 64, 3136, 1024, false, false),
        ("fc1 bwd-weights", 1024, 3136, 64, true, false),
        ("resnet18 3×3 256 on 4² (batch 32)", 256, 512, 2304, false, false),
        ("resnet18 3×3 512 on 2² (batch 32)", 512, 128, 4608, false, false),
        ("  bwd-data", 4608, 128, 512, true, false),
        ("  bwd-weights", 512, 4608, 128, false, true),
        ("resnet18 7×7/2 stem fwd (16 images)", 64, 16384, 147, false, false),
        ("  bwd-weights", 64, 147, 16384, false, true),
    ];

    public static void Run(double peakPerCore)
    {
        bool blas = OpenBlas.Available;
        Console.WriteLine($"SGEMM (row-major, C = op(A)·op(B)); OpenBLAS {(blas ? "core " + OpenBlas.CoreName : "not found: apt-get install libopenblas0-pthread")}");
        Console.WriteLine($"{"shape",-32} {"thr",3} {"Ml.Cnn GF/s",12} {"OpenBLAS GF/s",14} {"ratio",7} {"% peak",7}");
        foreach (int threads in new[] { 1, 2 })
        {
            foreach (var (name, m, n, k, ta, tb) in Shapes)
            {
                var rng = new Random(1);
                var a = Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble()).ToArray();
                var b = Enumerable.Range(0, k * n).Select(_ => (float)rng.NextDouble()).ToArray();
                var c = new float[m * n];
                double flops = 2.0 * m * n * k;
                double ours = flops / Time(() => Sgemm.Multiply(ta, tb, m, n, k, 1f, a, ta ? m : k, b, tb ? k : n, 0f, c, n, threads)) / 1e9;
                double theirs = double.NaN;
                if (blas)
                {
                    OpenBlas.SetThreads(threads);
                    theirs = flops / Time(() => OpenBlas.Sgemm(ta, tb, m, n, k, a, b, c)) / 1e9;
                }
                Console.WriteLine($"{name,-32} {threads,3} {ours,12:F1} {theirs,14:F1} {ours / theirs,7:P0} {ours / (peakPerCore * threads),7:P0}");
            }
        }
    }

    /// <summary>Best of several timed repetitions, each at least ~0.2 s, after a warm-up.</summary>
    internal static double Time(Action action)
    {
        action();
        var sw = Stopwatch.StartNew();
        int reps = 0;
        while (sw.Elapsed.TotalSeconds < 0.05) { action(); reps++; }
        int perRound = Math.Max(1, (int)(reps * 0.2 / sw.Elapsed.TotalSeconds));
        double best = double.MaxValue;
        for (int round = 0; round < 5; round++)
        {
            sw.Restart();
            for (int i = 0; i < perRound; i++) action();
            best = Math.Min(best, sw.Elapsed.TotalSeconds / perRound);
        }
        return best;
    }
}
