using System.Diagnostics;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Runtime.InteropServices;
using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Data;
using Ml.Cnn.Fuzzing;
using Ml.Cnn.MLNet;
using Ml.Cnn.Networks;
using Ml.Cnn.Onnx;
using Ml.Cnn.Optimizers;
using Ml.Cnn.Tensors;
using Ml.Cnn.Training;
using Ml.Cnn.Zoo;

namespace Ml.Cnn.Bench;

/// <summary>
/// Loads seeded mutants of the five file formats a user hands us (IDX, CIFAR-10, ONNX, checkpoint, model zip) and
/// tabulates how each load ended: the format's typed error, the original's result, another plausible result, a crash
/// (any other exception), or a hang (over 10 s). Run it under a heap cap (DOTNET_GCHeapHardLimit=0x40000000) so a
/// memory bomb shows as a crash. Allocations are counted per load: the target is at most twice the file's size plus 64 MiB.
/// </summary>
internal static class FuzzBenchmark
{
    private static readonly TimeSpan Watchdog = TimeSpan.FromSeconds(10);

    private sealed record Format(string Name, byte[] Original, int HeaderBytes, bool BigEndian, Func<string, string> Load);

    public static void Run(int each, string subsetFolder)
    {
        string folder = Path.Combine(Path.GetTempPath(), "mlcnn-fuzz-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            Console.WriteLine($"Fuzz: {each} truncations, {each} bit flips, {each / 2} zeroed runs, appended bytes and hostile header words per format; " +
                $"managed heap available {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1 << 20)} MiB");
            Console.WriteLine($"{"format",-12} {"tried",6} {"typed error",12} {"unchanged",10} {"changed",8} {"crash",6} {"hang",5} {"max alloc − 2×file",19} {"max ms",7}");
            int total = 0, crashes = 0, hangs = 0;
            ulong seed = 1000;
            foreach (var format in Formats(folder, subsetFolder))
            {
                var reference = format.Load(Write(folder, format.Name, format.Original));
                int tried = 0, typed = 0, unchanged = 0, changed = 0, crash = 0, hang = 0;
                long worstExcess = long.MinValue;
                double worstMs = 0;
                var examples = new List<string>();
                foreach (var mutant in Mutants.Of(format.Original, seed++, each, format.HeaderBytes, format.BigEndian))
                {
                    string path = Write(folder, format.Name, mutant);
                    var (outcome, error, allocated, ms) = Attempt(() => format.Load(path));
                    tried++;
                    worstExcess = Math.Max(worstExcess, allocated - 2L * mutant.Length);
                    worstMs = Math.Max(worstMs, ms);
                    if (outcome is null && error is null) hang++;
                    else if (error is InvalidDataException or NotSupportedException) typed++;
                    else if (error is not null) { crash++; if (examples.Count < 3) examples.Add($"{error.GetType().Name}: {error.Message}"); }
                    else if (outcome == reference) unchanged++;
                    else changed++;
                    if (allocated > 2L * mutant.Length + (64L << 20)) examples.Add($"allocated {allocated} bytes for a {mutant.Length}-byte file");
                }
                Console.WriteLine($"{format.Name,-12} {tried,6} {typed,12} {unchanged,10} {changed,8} {crash,6} {hang,5} {$"{worstExcess / 1048576.0:F2} MiB",19} {worstMs,7:F0}");
                foreach (var e in examples) Console.WriteLine($"    {e}");
                total += tried;
                crashes += crash;
                hangs += hang;
            }
            Console.WriteLine($"{total} loads, {crashes} crashes, {hangs} hangs; peak RSS {PeakRssMiB():F0} MiB");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static string Write(string folder, string name, byte[] bytes)
    {
        string path = Path.Combine(folder, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Runs a load on its own thread under the watchdog; counts what that thread allocated.</summary>
    private static (string? Outcome, Exception? Error, long Allocated, double Ms) Attempt(Func<string> load)
    {
        string? outcome = null;
        Exception? error = null;
        long allocated = 0;
        var clock = Stopwatch.StartNew();
        var thread = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try { outcome = load(); }
            catch (Exception e) { error = e; }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }) { IsBackground = true };
        thread.Start();
        return thread.Join(Watchdog) ? (outcome, error, allocated, clock.Elapsed.TotalMilliseconds) : (null, null, 0, Watchdog.TotalMilliseconds);
    }

    private static double PeakRssMiB()
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:"));
        return line is null ? double.NaN : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
    }

    private static string Digest(ReadOnlySpan<float> values) => Convert.ToHexString(SHA256.HashData(MemoryMarshal.AsBytes(values)));

    private static string Digest(ImageDataset data)
    {
        var all = new float[data.Count * data.ItemShape.Length + data.Targets.Length];
        for (int i = 0; i < data.Count; i++) data.CopyItem(i, all.AsSpan(i * data.ItemShape.Length, data.ItemShape.Length));
        data.Targets.CopyTo(all, data.Count * data.ItemShape.Length);
        return $"{data.ItemShape}:{Digest(all)}";
    }

    private static string Digest(Network network) =>
        Digest(network.StateTensors.SelectMany(t => t.ToArray()).ToArray());

    private static IEnumerable<Format> Formats(string folder, string subsetFolder)
    {
        var subset = Idx.LoadFromFolder(subsetFolder, "t10k");
        const int count = 100;
        var images = new byte[16 + count * 784];
        var labels = new byte[8 + count];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(images, 0x803);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(4), count);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(8), 28);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(12), 28);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(labels, 0x801);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(labels.AsSpan(4), count);
        for (int i = 0; i < count; i++)
        {
            var item = subset.GetItem(i);
            for (int p = 0; p < 784; p++) images[16 + i * 784 + p] = (byte)Math.Round(item[p] * 255);
            labels[8 + i] = (byte)subset.Targets[i];
        }
        string labelsPath = Path.Combine(folder, "labels-idx1-ubyte");
        File.WriteAllBytes(labelsPath, labels);
        yield return new Format("IDX", images, 16, true, path => Digest(Idx.Load(path, labelsPath)));
        yield return new Format("IDX (gzip)", Gzip(images), 16, true, path => Digest(Idx.Load(path, labelsPath)));

        var cifar = new byte[8 * 3073];
        var rng = new Rng(3);
        for (int i = 0; i < cifar.Length; i++) cifar[i] = (byte)(i % 3073 == 0 ? rng.NextInt(10) : rng.NextInt(256));
        yield return new Format("CIFAR-10", cifar, 8, true, path => Digest(Cifar10.Load([path])));

        var lenet = Network.Create(ModelZoo.Get("lenet5", 10), new CpuBackend(1), new TensorShape(1, 28, 28), 1);
        yield return new Format("ONNX", OnnxExporter.ToBytes(lenet), 64, false, path => Digest(OnnxImporter.Import(path, new CpuBackend(1))));

        var data = subset.Subset(Enumerable.Range(0, 64).ToArray());
        Network Mlp() => Network.Sequential(new CpuBackend(1), new TensorShape(1, 28, 28), 1,
            new Ml.Cnn.Layers.Flatten(), new Ml.Cnn.Layers.Dense(32), new Ml.Cnn.Layers.Relu(), new Ml.Cnn.Layers.Dense(10));
        string checkpoints = Path.Combine(folder, "checkpoints");
        var options = new TrainerOptions { Epochs = 2, BatchSize = 16, ValidationFraction = 0.25f, CheckpointDirectory = checkpoints };
        Trainer.Train(Mlp(), data, options);
        var fingerprint = RunFingerprint.Of(data, options);
        yield return new Format("checkpoint", File.ReadAllBytes(Path.Combine(checkpoints, "checkpoint.mlcnn")), 120, false, path =>
        {
            var network = Mlp();
            Checkpoint.Load(path, network, new Sgd(network.Parameters, 0.01f, 0.9f, false, 0), new LearningRateSchedule(),
                new RunState(new Rng(1)), fingerprint);
            return Digest(network);
        });

        var ml = new MLContext(seed: 1);
        var view = ml.Data.ToDataView(data, Idx.FashionMnistClasses);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Architecture = "linear", Epochs = 1 }))
            .Fit(view);
        string zip = Path.Combine(folder, "model.zip");
        ml.Model.SaveAtomically(model, view.Schema, zip);
        yield return new Format("model zip", File.ReadAllBytes(zip), 64, false, path =>
        {
            var loaded = new MLContext().Model.LoadModel(path, out _);
            return Digest(loaded.Transform(view).GetColumn<float[]>("Score").Take(8).SelectMany(s => s).ToArray());
        });
    }

    private static byte[] Gzip(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest)) gzip.Write(bytes);
        return output.ToArray();
    }
}
