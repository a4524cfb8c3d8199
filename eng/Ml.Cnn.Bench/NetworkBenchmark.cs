using System.Diagnostics;
using System.Text.Json;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Losses;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Training;
using Ml.Cnn.Zoo;

namespace Ml.Cnn.Bench;

/// <summary>
/// `networks [SIZE] [BATCH]`: MobileNetV2 and ResNet-18 (torchvision's forms, 10 classes) forward+backward in training
/// mode and forward in evaluation mode, images per second beside torchvision's same networks in the same run
/// (eng/peers/torch_networks.py), both on the benchmark's threads. Best of a few rounds.
/// </summary>
internal static class NetworkBenchmark
{
    private static readonly string[] Networks = ["mobilenet-v2", "resnet18"];

    public static void Run(string[] args)
    {
        int size = args.Length > 1 ? int.Parse(args[1]) : 64, batch = args.Length > 2 ? int.Parse(args[2]) : 32;
        int threads = Environment.ProcessorCount;
        int rounds = size >= 128 ? 3 : 5;
        Console.WriteLine($"Networks at 3×{size}×{size}, batch {batch}, {threads} threads, best of {rounds} rounds:");
        var torch = Torch(threads, batch, size);
        if (torch is null) Console.WriteLine("  (PyTorch peer unavailable: apt-get install python3-torch python3-torchvision)");
        foreach (var name in Networks)
        {
            var backend = new CpuBackend(threads);
            var network = Network.Create(ModelZoo.Get(name, 10), backend, new TensorShape(3, size, size), seed: 1);
            var rng = new Rng(2);
            var x = backend.Allocate(new TensorShape(batch, 3, size, size));
            x.CopyFrom(Enumerable.Range(0, x.Length).Select(_ => (float)rng.NextGaussian()).ToArray());
            var targets = backend.Allocate(new TensorShape(batch));
            targets.CopyFrom(Enumerable.Range(0, batch).Select(i => (float)(i % 10)).ToArray());
            var loss = Trainer.CreateLoss(LossKind.SoftmaxCrossEntropy);
            double Timed(Action step)
            {
                step();
                double best = double.MaxValue;
                for (int r = 0; r < rounds; r++)
                {
                    var clock = Stopwatch.StartNew();
                    step();
                    best = Math.Min(best, clock.Elapsed.TotalSeconds);
                }
                return best;
            }
            double train = Timed(() =>
            {
                var output = network.Forward(x, training: true);
                var gradient = backend.Allocate(output.Shape);
                loss.Compute(output, targets, gradient);
                network.Backward(gradient);
            });
            double infer = Timed(() => network.Forward(x, training: false));
            string Compare(double ours, string what) => torch?.GetValueOrDefault(name) is { } t
                ? $", PyTorch {batch / t[what]:F1} img/s → {t[what] / ours:F2}× PyTorch's speed" : "";
            Console.WriteLine($"  {name,-13} train {batch / train,7:F1} img/s{Compare(train, "train")}");
            Console.WriteLine($"  {name,-13} infer {batch / infer,7:F1} img/s{Compare(infer, "infer")}");
        }
        Console.WriteLine($"  peak working set {Process.GetCurrentProcess().PeakWorkingSet64 >> 20} MiB (ours; PyTorch ran in its own process)");
    }

    private static Dictionary<string, Dictionary<string, double>>? Torch(int threads, int batch, int size)
    {
        try
        {
            using var process = Peers.Start("torch_networks.py", threads, [threads.ToString(), batch.ToString(), size.ToString(), .. Networks]);
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0) return null;
            using var doc = JsonDocument.Parse(output);
            Console.WriteLine($"  PyTorch {doc.RootElement.GetProperty("torch").GetString()}");
            return doc.RootElement.GetProperty("seconds").EnumerateObject().ToDictionary(p => p.Name,
                p => p.Value.EnumerateObject().ToDictionary(q => q.Name, q => q.Value.GetDouble()));
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }
}
