using System.Diagnostics;
using System.Text.Json;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Data;
using Ml.Cnn.Networks;
using Ml.Cnn.Training;
using Ml.Cnn.Zoo;

namespace Ml.Cnn.Bench;

/// <summary>
/// Trains a zoo architecture on the full Fashion-MNIST (Debian's dataset-fashion-mnist) and prints seconds per
/// epoch, test accuracy, inference images/s and peak memory; for the reference CNN and ResNet-20, PyTorch trains the
/// same network with the same batch size, optimizer and recipe afterwards in the same run (eng/peers/torch_train.py).
/// Usage: train ARCH EPOCHS [DATA_DIR] [--torch-epochs N]
/// </summary>
internal static class TrainingBenchmark
{
    public static void Run(string[] args)
    {
        string architecture = args.Length > 1 ? args[1] : "reference-cnn";
        int epochs = args.Length > 2 ? int.Parse(args[2]) : 1;
        string folder = args.Length > 3 && !args[3].StartsWith("--") ? args[3] : "/usr/share/datasets/fashion-mnist";
        int torchEpochs = Array.IndexOf(args, "--torch-epochs") is int at and >= 0 ? int.Parse(args[at + 1]) : 1;
        int threads = 2;

        var train = Idx.LoadFromFolder(folder, "train");
        var test = Idx.LoadFromFolder(folder, "t10k");
        var network = Network.Create(ModelZoo.Get(architecture, 10), new CpuBackend(threads), train.ItemShape, seed: 1);
        bool resnet = architecture.StartsWith("resnet", StringComparison.Ordinal);
        var options = resnet
            ? new TrainerOptions
            {
                Epochs = epochs, BatchSize = 128, LearningRate = 0.1f, Momentum = 0.9f, Nesterov = true, WeightDecay = 5e-4f,
                Schedule = new LearningRateSchedule { Kind = ScheduleKind.Cosine, WarmupEpochs = 1 }, NormalizeInputs = true,
                Augmentation = new Augmentation { HorizontalFlip = true, CropPadding = 2 }, Seed = 1,
            }
            : new TrainerOptions { Epochs = epochs, BatchSize = 64, LearningRate = 0.01f, Momentum = 0.9f, Seed = 1 };
        options.Progress = new EpochPrinter();
        Console.WriteLine($"Training {architecture} on Fashion-MNIST ({train.Count} images), {epochs} epochs, batch {options.BatchSize}, {threads} threads");
        var result = Trainer.Train(network, train, options);

        var clock = Stopwatch.StartNew();
        var scores = Trainer.Predict(network, test, result.Normalization);
        double inference = test.Count / clock.Elapsed.TotalSeconds;
        int correct = Enumerable.Range(0, test.Count).Count(i =>
            Core.Scores.ArgMax(scores.AsSpan(i * 10, 10)) == (int)test.Targets[i]);
        double meanEpoch = result.History.Average(h => h.Seconds);
        double peakMib = Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0;
        var gc = GC.GetGCMemoryInfo();
        Console.WriteLine($"        managed heap {gc.HeapSizeBytes / 1048576.0:F0} MiB (fragmented {gc.FragmentedBytes / 1048576.0:F0}), committed {gc.TotalCommittedBytes / 1048576.0:F0} MiB, peak working set {peakMib:F0} MiB");
        Console.WriteLine($"Ml.Cnn  {architecture}: test accuracy {(double)correct / test.Count:F4}, {meanEpoch:F1} s/epoch ({train.Count / meanEpoch:F0} img/s), inference {inference:F0} img/s, peak RSS {peakMib:F0} MiB");

        if (architecture is not ("reference-cnn" or "resnet20") || torchEpochs == 0) return;
        using var process = Peers.Start("torch_train.py", threads, folder, torchEpochs.ToString(), threads.ToString(), architecture);
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) { Console.WriteLine("PyTorch peer failed (apt-get install python3-torch)."); return; }
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        double torchEpoch = root.GetProperty("epoch_seconds").EnumerateArray().Average(e => e.GetDouble());
        double torchInference = root.GetProperty("inference_images_per_second").GetDouble();
        Console.WriteLine($"PyTorch {root.GetProperty("torch").GetString()} (BLAS: {root.GetProperty("blas").GetString()}) {architecture}: test accuracy {root.GetProperty("test_accuracy").GetDouble():F4} after {torchEpochs} epoch(s), " +
            $"{torchEpoch:F1} s/epoch, inference {torchInference:F0} img/s, peak RSS {root.GetProperty("peak_rss_mib").GetDouble():F0} MiB");
        Console.WriteLine($"Ratios: epoch time {meanEpoch / torchEpoch:F2}x PyTorch's, inference {inference / torchInference:F2}x, peak memory {peakMib / root.GetProperty("peak_rss_mib").GetDouble():F2}x");
    }

    private sealed class EpochPrinter : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            if (p.EpochEnd) Console.WriteLine($"  epoch {p.Epoch}/{p.Epochs}: loss {p.Loss:F4}, training accuracy {p.Accuracy:F4}, {p.ImagesPerSecond:F0} img/s");
        }
    }
}
