using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Data;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Training;
using Ml.Cnn.Zoo;

namespace Ml.Cnn.Bench;

/// <summary>
/// Resident memory of a training run with and without a checkpoint after every epoch: the reference CNN on 3,000
/// embedded Fashion-MNIST items, 10 epochs, 2 threads. Run once per mode (each in its own process, as RSS is per process).
/// </summary>
internal static class CheckpointMemoryBenchmark
{
    public static void Run(bool checkpoints, string subsetFolder)
    {
        var data = Idx.LoadFromFolder(subsetFolder, "train");
        data = data.Subset(Enumerable.Range(0, 3000).ToArray());
        var network = Network.Create(ModelZoo.Get("reference-cnn", 10), new CpuBackend(2), new TensorShape(1, 28, 28), 1);
        string folder = Path.Combine(Path.GetTempPath(), "mlcnn-ckpt-rss-" + Guid.NewGuid().ToString("N"));
        var rss = new List<double>();
        try
        {
            Trainer.Train(network, data, new TrainerOptions
            {
                Epochs = 10, BatchSize = 64, ValidationFraction = 0.1f, CheckpointDirectory = checkpoints ? folder : null,
                Progress = new EpochEnd(() => rss.Add(Status("VmRSS:"))),
            });
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        Console.WriteLine($"reference CNN, 3,000 items, 10 epochs, checkpoint every epoch: {(checkpoints ? "yes" : "no")}");
        Console.WriteLine($"RSS after each epoch (MiB): {string.Join(" ", rss.Select(r => r.ToString("F0")))}; peak {Status("VmHWM:"):F0} MiB");
    }

    private static double Status(string field)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
    }

    private sealed class EpochEnd(Action report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            if (value.EpochEnd) report();
        }
    }
}
