using System.Diagnostics;
using System.Text.Json;
using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Gpu;
using Ml.Cnn.Core;
using Ml.Cnn.Data;
using Ml.Cnn.Losses;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Training;
using Ml.Cnn.Zoo;

namespace Ml.Cnn.Bench;

/// <summary>
/// `networks [SIZE] [BATCH] [NAME...]`: MobileNetV2 and ResNet-18 (torchvision's forms, 10 classes; or the named
/// networks: vit-b16 too) forward+backward in training mode and forward in evaluation mode, images per second beside
/// torchvision's same networks in the same run (eng/peers/torch_networks.py), both on the benchmark's threads. Best of
/// a few rounds.
/// `networks segmentation [SIZE] [BATCH]`: the same for the zoo's U-Net and FCN-8s (per-pixel cross-entropy, 11 classes)
/// and CenterNet detector (focal and L1 loss, 10 classes) on 1-channel images, beside the same networks written in
/// PyTorch (eng/peers/torch_segmentation.py).
/// </summary>
internal static class NetworkBenchmark
{
    private sealed record Task(string[] Networks, string Peer, int Channels, Func<string, NetworkBuilder> Definition, LossKind Loss);

    private static readonly Task Classification =
        new(["mobilenet-v2", "resnet18"], "torch_networks.py", 3, name => ModelZoo.Get(name, 10), LossKind.SoftmaxCrossEntropy);

    private const int SegmentationClasses = 11;

    private static readonly Task Segmentation = new(["unet", "fcn8s", "centernet"], "torch_segmentation.py", 1,
        name => name == "centernet" ? ModelZoo.GetDetection(name, SegmentationClasses - 1) : ModelZoo.GetSegmentation(name, SegmentationClasses),
        LossKind.PixelSoftmaxCrossEntropy);

    public static void Run(string[] args)
    {
        if (args.Length > 1 && args[1] == "profile") { Profile(args); return; }
        // --cuda N: our networks on the GPU backend on CUDA device N, PyTorch's on its GPU (--gpu-on-cpu: the GPU
        // backend on ILGPU's CPU accelerator, to try the benchmark without a GPU).
        int at = Array.IndexOf(args, "--cuda");
        bool gpuOnCpu = args.Contains("--gpu-on-cpu");
        Func<IBackend> newBackend = at >= 0 ? () => GpuBackend.Cuda(int.Parse(args[at + 1]))
            : gpuOnCpu ? GpuBackend.CpuAccelerator : () => new CpuBackend(Environment.ProcessorCount);
        if (at >= 0) Environment.SetEnvironmentVariable("ML_CNN_PEER_DEVICE", "cuda");
        args = at >= 0 ? [.. args[..at], .. args[(at + 2)..]] : args.Where(a => a != "--gpu-on-cpu").ToArray();
        bool segmentation = args.Length > 1 && args[1] == "segmentation";
        var task = segmentation ? Segmentation : Classification;
        int first = segmentation ? 2 : 1;
        int size = args.Length > first ? int.Parse(args[first]) : 64, batch = args.Length > first + 1 ? int.Parse(args[first + 1]) : 32;
        // Names after the batch size choose other networks of the zoo (e.g. vit-b16), which the peer knows too.
        if (args.Length > first + 2) task = task with { Networks = args[(first + 2)..] };
        int threads = Environment.ProcessorCount;
        int rounds = size >= 128 ? 3 : 5;
        Console.WriteLine($"Networks at {task.Channels}×{size}×{size}, batch {batch}, {threads} threads, best of {rounds} rounds:");
        var (torch, torchParameters) = Torch(task, threads, batch, size);
        if (torch is null) Console.WriteLine("  (PyTorch peer unavailable: apt-get install python3-torch python3-torchvision)");
        foreach (var name in task.Networks)
        {
            var backend = newBackend();
            var network = Network.Create(task.Definition(name), backend, new TensorShape(task.Channels, size, size), seed: 1);
            if (backend is GpuBackend onGpu) Console.WriteLine($"  {name} on {backend.Name}; products: {onGpu.GemmLibrary}");
            if (torchParameters?.GetValueOrDefault(name) is { } count)
                Console.WriteLine($"  {name}: {network.ParameterCount:N0} parameters (PyTorch's: {count:N0})");
            var rng = new Rng(2);
            var x = backend.Allocate(new TensorShape(batch, task.Channels, size, size));
            x.CopyFrom(Enumerable.Range(0, x.Length).Select(_ => (float)rng.NextGaussian()).ToArray());
            bool detector = name == "centernet";
            var targets = backend.Allocate(detector ? new TensorShape(batch, CenterNet.TargetChannels(SegmentationClasses - 1) * network.OutputShape[1]
                    * network.OutputShape[2])
                : segmentation ? new TensorShape(batch, size * size) : new TensorShape(batch));
            int classes = segmentation ? SegmentationClasses : 10;
            targets.CopyFrom(detector ? DetectionTargets(batch, size, rng)
                : Enumerable.Range(0, targets.Length).Select(i => (float)(i * 7 % classes)).ToArray());
            Loss loss = detector ? new CenterNetLoss(SegmentationClasses - 1) : Trainer.CreateLoss(task.Loss);
            // A GPU backend queues its kernels: a step ends when the device has run them.
            void Synchronize() => (backend as GpuBackend)?.Synchronize();
            double Timed(Action step)
            {
                step();
                Synchronize();
                double best = double.MaxValue;
                for (int r = 0; r < rounds; r++)
                {
                    var clock = Stopwatch.StartNew();
                    step();
                    Synchronize();
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
            if (backend is GpuBackend gpu)
            {
                Console.WriteLine($"  {name,-13} GPU memory in use {gpu.DeviceMemoryInUse >> 20} MiB, host fallbacks: " +
                    (gpu.Fallbacks.Count == 0 ? "none" : string.Join(", ", gpu.Fallbacks.Select(f => $"{f.Key} ×{f.Value}"))));
                network.Dispose();
                gpu.Dispose();
            }
        }
        Console.WriteLine($"  peak working set {Process.GetCurrentProcess().PeakWorkingSet64 >> 20} MiB (ours; PyTorch ran in its own process)");
    }

    /// <summary>
    /// `networks profile NAME [SIZE] [BATCH] [infer]`: seconds per forward and backward pass (forward only, inference mode, with `infer`) summed by layer kind (convolutions
    /// told apart by kernel, stride and grouping), best of 3 — where a network's time goes.
    /// </summary>
    public static void Profile(string[] args)
    {
        string name = args[2];
        int size = args.Length > 3 ? int.Parse(args[3]) : 64, batch = args.Length > 4 ? int.Parse(args[4]) : 32;
        bool training = !args.Contains("infer"); // `infer`: forward passes in inference mode only
        var backend = new CpuBackend(Environment.ProcessorCount);
        var network = Network.Create(ModelZoo.Get(name, 10), backend, new TensorShape(3, size, size), seed: 1);
        var x = backend.Allocate(new TensorShape(batch, 3, size, size));
        x.CopyFrom(Enumerable.Range(0, x.Length).Select(i => (float)Math.Sin(i)).ToArray());
        var nodes = network.Nodes;
        string Kind(NetworkNode node) => node.Layer switch
        {
            Layers.Conv2d c => $"conv {c.KernelSize.H}×{c.KernelSize.W}/{c.Stride.H}{(c.Groups > 1 ? (c.Groups == c.InputShape[0] ? " depthwise" : $" g{c.Groups}") : "")} on {c.InputShape[1]}²",
            var layer => layer.GetType().Name,
        };
        var forward = new Dictionary<string, double>();
        var backward = new Dictionary<string, double>();
        for (int round = 0; round < 4; round++)
        {
            var (f, b) = (new Dictionary<string, double>(), new Dictionary<string, double>());
            var activations = new Tensor[nodes.Count];
            for (int i = 0; i < nodes.Count; i++)
            {
                var inputs = nodes[i].Inputs.Select(k => k < 0 ? x : activations[k]).ToArray();
                var clock = Stopwatch.StartNew();
                activations[i] = nodes[i].Layer.ForwardNode(inputs, training);
                f[Kind(nodes[i])] = f.GetValueOrDefault(Kind(nodes[i])) + clock.Elapsed.TotalSeconds;
            }
            if (!training)
            {
                if (round > 0) foreach (var (k, v) in f) forward[k] = round == 1 ? v : Math.Min(forward[k], v);
                continue;
            }
            var gradients = new Tensor?[nodes.Count];
            gradients[^1] = activations[^1];
            for (int i = nodes.Count - 1; i >= 0; i--)
            {
                var inputGradients = new Tensor?[nodes[i].Inputs.Count];
                var clock = Stopwatch.StartNew();
                nodes[i].Layer.BackwardNode(gradients[i]!, inputGradients);
                b[Kind(nodes[i])] = b.GetValueOrDefault(Kind(nodes[i])) + clock.Elapsed.TotalSeconds;
                for (int k = 0; k < inputGradients.Length; k++)
                    if (nodes[i].Inputs[k] >= 0 && inputGradients[k] is { } g)
                        gradients[nodes[i].Inputs[k]] ??= g; // timing only: fan-out sums are skipped
            }
            if (round == 0) continue; // warm-up
            foreach (var (k, v) in f) forward[k] = round == 1 ? v : Math.Min(forward[k], v);
            foreach (var (k, v) in b) backward[k] = round == 1 ? v : Math.Min(backward[k], v);
        }
        Console.WriteLine($"{name} at 3×{size}×{size}, batch {batch}, {Environment.ProcessorCount} threads: ms per pass by layer kind");
        foreach (var k in forward.Keys.OrderByDescending(k => forward[k] + backward.GetValueOrDefault(k)))
            Console.WriteLine($"  {k,-30} forward {forward[k] * 1e3,8:F1}  backward {backward.GetValueOrDefault(k) * 1e3,8:F1}");
        Console.WriteLine($"  {"all",-30} forward {forward.Values.Sum() * 1e3,8:F1}  backward {backward.Values.Sum() * 1e3,8:F1}");
    }

    /// <summary>CenterNet targets for three random boxes per image.</summary>
    private static float[] DetectionTargets(int batch, int size, Rng rng) =>
        Enumerable.Range(0, batch).SelectMany(_ => CenterNet.Encode(Enumerable.Range(0, 3).Select(k =>
        {
            float x = (float)rng.NextDouble() * (size - 24), y = (float)rng.NextDouble() * (size - 24);
            return new ObjectBox(k, x, y, x + 24, y + 20);
        }).ToList(), SegmentationClasses - 1, size / 4, size / 4, 4)).ToArray();

    private static (Dictionary<string, Dictionary<string, double>>? Seconds, Dictionary<string, long>? Parameters) Torch(Task task, int threads,
        int batch, int size)
    {
        try
        {
            using var process = Peers.Start(task.Peer, threads, [threads.ToString(), batch.ToString(), size.ToString(), .. task.Networks]);
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0) return (null, null);
            using var doc = JsonDocument.Parse(output);
            var root = doc.RootElement;
            Console.WriteLine($"  PyTorch {root.GetProperty("torch").GetString()}" + (root.TryGetProperty("gpu", out var gpu)
                ? $" on {gpu.GetString()}, peak GPU memory {root.GetProperty("peak_gpu_memory_mib").GetDouble():F0} MiB" : ""));
            var seconds = doc.RootElement.GetProperty("seconds").EnumerateObject().ToDictionary(p => p.Name,
                p => p.Value.EnumerateObject().ToDictionary(q => q.Name, q => q.Value.GetDouble()));
            var parameters = doc.RootElement.TryGetProperty("parameters", out var counts)
                ? counts.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64()) : null;
            return (seconds, parameters);
        }
        catch (System.ComponentModel.Win32Exception) { return (null, null); }
    }
}
