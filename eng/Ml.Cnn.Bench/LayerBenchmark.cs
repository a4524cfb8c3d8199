using System.Diagnostics;
using System.Text.Json;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Layers;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Bench;

/// <summary>
/// Forward+backward throughput of the reference CNN's layers at batch 64, beside PyTorch running the same layers
/// with the same thread count in the same run (eng/peers/torch_layers.py on Debian's python3-torch).
/// </summary>
internal static class LayerBenchmark
{
    private const int Batch = 64;

    private static (string Name, Func<Layer> Create, int[] Shape, bool InputGradient)[] Layers() =>
    [
        ("conv1 5x5 1->32 pad2", () => new Conv2d(32, 5, padding: 2), [1, 28, 28], false),
        ("relu1", () => new Relu(), [32, 28, 28], true),
        ("pool1 2x2", () => new MaxPool2d(2), [32, 28, 28], true),
        ("conv2 5x5 32->64 pad2", () => new Conv2d(64, 5, padding: 2), [32, 14, 14], true),
        ("relu2", () => new Relu(), [64, 14, 14], true),
        ("pool2 2x2", () => new MaxPool2d(2), [64, 14, 14], true),
        ("fc1 3136->1024", () => new Dense(1024), [3136], true),
        ("relu3", () => new Relu(), [1024], true),
        ("fc2 1024->10", () => new Dense(10), [1024], true),
    ];

    public static void Run(double peakPerCore)
    {
        foreach (int threads in new[] { 1, 2 })
        {
            var torch = RunTorch(threads);
            var backend = new CpuBackend(threads);
            var rng = new Rng(1);
            Console.WriteLine();
            Console.WriteLine($"Reference CNN layers, forward+backward, batch {Batch}, {threads} thread(s); PyTorch {torch?.Version ?? "not available (apt-get install python3-torch)"}");
            Console.WriteLine($"{"layer",-26} {"Ml.Cnn ms",10} {"PyTorch ms",11} {"speed-up",9} {"Ml.Cnn img/s",13}");
            foreach (var (name, create, shape, inputGradient) in Layers())
            {
                var layer = create();
                layer.ComputesInputGradient = inputGradient;
                layer.Build(backend, new TensorShape(shape), rng);
                var x = Random(backend, rng, [Batch, .. shape]);
                var dy = Random(backend, rng, [Batch, .. layer.OutputShape.Dims]);
                double ours = GemmBenchmark.Time(() => { layer.Forward(x, true); layer.Backward(dy); });
                Report(name, ours, torch?.Seconds.GetValueOrDefault(name));
            }

            var network = new List<Layer>();
            var item = new TensorShape(1, 28, 28);
            foreach (var (_, create, _, _) in Layers())
            {
                var layer = create();
                layer.ComputesInputGradient = network.Count > 0;
                layer.Build(backend, item, rng);
                item = layer.OutputShape;
                network.Add(layer);
            }
            var input = Random(backend, rng, [Batch, 1, 28, 28]);
            var gradient = Random(backend, rng, [Batch, 10]);
            double whole = GemmBenchmark.Time(() =>
            {
                var a = input;
                foreach (var l in network) a = l.Forward(a, true);
                var g = gradient;
                for (int i = network.Count - 1; i >= 0; i--) g = network[i].Backward(g)!;
            });
            Report("whole stack", whole, torch?.Seconds.GetValueOrDefault("whole stack"));
            double inference = GemmBenchmark.Time(() =>
            {
                var a = input;
                foreach (var l in network) a = l.Forward(a, false);
            });
            Report("inference (forward only)", inference, torch?.Seconds.GetValueOrDefault("inference (forward only)"));
            // Multiply-adds of one image through the stack, forward; training does about three times as much.
            double flops = 2.0 * (32 * 25 * 784 + 64 * 800 * 196 + 3136 * 1024 + 1024 * 10);
            Console.WriteLine($"whole stack: {3 * flops * Batch / whole / 1e9:F1} GFLOP/s, {3 * flops * Batch / whole / 1e9 / (peakPerCore * threads):P0} of peak");
        }
    }

    private static void Report(string name, double ours, double? theirs) =>
        Console.WriteLine($"{name,-26} {ours * 1e3,10:F3} {(theirs is { } t ? (t * 1e3).ToString("F3") : "-"),11} " +
                          $"{(theirs is { } t2 ? (t2 / ours).ToString("F2") + "x" : "-"),9} {Batch / ours,13:F0}");

    private static Tensor Random(CpuBackend backend, Rng rng, int[] shape)
    {
        var t = backend.Allocate(new TensorShape(shape));
        var values = new float[t.Length];
        for (int i = 0; i < values.Length; i++) values[i] = (float)rng.NextGaussian();
        t.CopyFrom(values);
        return t;
    }

    private sealed record TorchResult(string Version, Dictionary<string, double> Seconds);

    private static TorchResult? RunTorch(int threads)
    {
        string script = Path.Combine(AppContext.BaseDirectory, "peers", "torch_layers.py");
        if (!File.Exists("/usr/bin/python3") || !File.Exists(script)) return null;
        using var process = Peers.Start("torch_layers.py", threads, threads.ToString(), Batch.ToString());
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) return null;
        using var doc = JsonDocument.Parse(output);
        var seconds = doc.RootElement.GetProperty("seconds").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
        return new TorchResult($"{doc.RootElement.GetProperty("torch").GetString()} (BLAS: {doc.RootElement.GetProperty("blas").GetString()})", seconds);
    }
}
