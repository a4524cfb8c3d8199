using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Data;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Training;
using Ml.Cnn.Zoo;

namespace Ml.Cnn.MLNet;

/// <summary>What a CNN trainer fits: it chooses the zoo, the network's output and how a starting network is adapted.</summary>
internal enum CnnTask { Classification, Segmentation, Detection }

internal static class CnnTraining
{
    /// <summary>The model-zoo names a task's Architecture may take.</summary>
    public static IReadOnlyList<string> Zoo(CnnTask task) => task switch
    {
        CnnTask.Segmentation => ModelZoo.SegmentationNames,
        CnnTask.Detection => ModelZoo.DetectionNames,
        _ => ModelZoo.Names,
    };

    /// <summary>The checks an estimator makes at construction, before any data is read.</summary>
    public static void ValidateOptions(CnnTrainerOptions o, CnnTask task = CnnTask.Classification)
    {
        var zoo = Zoo(task);
        TrainerOptions.Require(o.Schedule is not null, nameof(o.Schedule), "null", "must be a schedule (the default is constant)");
        o.ValidateSettings();
        TrainerOptions.Require(o.LabelColumnName is not null, nameof(o.LabelColumnName), "null", "must name a column");
        TrainerOptions.Require(o.FeatureColumnName is not null, nameof(o.FeatureColumnName), "null", "must name a column");
        TrainerOptions.Require(o.StartingNetwork is null || o.Network is null, nameof(o.StartingNetwork), "set",
            "and Network cannot both be given: StartingNetwork brings its own layers");
        bool ownLayers = o.StartingNetwork is not null || o.Network is not null;
        TrainerOptions.Require(ownLayers || o.Architecture is not null, nameof(o.Architecture), "null",
            $"must name a model-zoo architecture ({string.Join(", ", zoo)}) unless Network or StartingNetwork is given");
        TrainerOptions.Require(ownLayers || zoo.Contains(o.Architecture!.ToLowerInvariant()), nameof(o.Architecture), o.Architecture!,
            $"is not a model-zoo {(task == CnnTask.Classification ? "" : task.ToString().ToLowerInvariant() + " ")}architecture ({string.Join(", ", zoo)})");
        TrainerOptions.Require(o.Threads >= 0, nameof(o.Threads), o.Threads, "must be 0 (all cores) or positive");
        TrainerOptions.Require(o.ImageChannels >= 0, nameof(o.ImageChannels), o.ImageChannels, "must be 0 (from the column) or positive");
        TrainerOptions.Require(o.ImageHeight >= 0, nameof(o.ImageHeight), o.ImageHeight, "must be 0 (from the column) or positive");
        TrainerOptions.Require(o.ImageWidth >= 0, nameof(o.ImageWidth), o.ImageWidth, "must be 0 (from the column) or positive");
    }

    /// <summary>
    /// Trains with the checkpoints of this fit in their own subfolder of the checkpoint directory, named by the data,
    /// the options and the network: each fold of a cross-validation (and each trial of a sweep) trains and resumes on
    /// its own, and a fit on the same data with the same options resumes where it stopped.
    /// </summary>
    public static TrainingResult Train(Network network, ImageDataset data, CnnTrainerOptions options, ImageDataset? validation,
        ulong seed, IHostEnvironment? environment)
    {
        var run = options.CopyForRun();
        run.Seed = seed;
        if (validation is not null) run.ValidationData = validation;
        if (run.CheckpointDirectory is { } root)
            // The thread count is part of it: the same seed gives the same model only with the same thread count.
            run.CheckpointDirectory = Path.Combine(root,
                RunFingerprint.Of(data, run).FolderName($"{Describe(network, options)}|threads {options.Threads}"));
        run.Progress = MLContextAccess.Logging(environment, options.Progress, out var channel);
        using (channel) return Trainer.Train(network, data, run, options.Cancellation);
    }

    /// <summary>
    /// Opens the device <c>MLContext.GpuDeviceId</c> names, in place of a CUDA device: lets tests run the ML.NET
    /// trainers on the GPU backend's kernels under ILGPU's CPU accelerator. Scoped to the caller's async flow.
    /// </summary>
    internal static readonly AsyncLocal<Func<int, IBackend>?> DeviceOpener = new();

    /// <summary>
    /// The backend a fit trains on: the CPU backend with the options' threads, or, when the context sets
    /// <c>MLContext.GpuDeviceId</c>, that CUDA device through <c>Ml.Cnn.Gpu</c> (loaded by name, so Ml.Cnn does not
    /// depend on it). No usable device: with <c>FallbackToCpu</c> the CPU backend and one line through
    /// <c>MLContext.Log</c>; without it a <see cref="GpuUnavailableException"/> saying what was looked for and found.
    /// </summary>
    public static IBackend BackendFor(CnnTrainerOptions options, IHostEnvironment? environment) =>
        BackendFor(options.Threads, environment);

    /// <summary>The backend for a fit with <paramref name="threads"/> CPU threads (0: all cores); see the options overload.</summary>
    internal static IBackend BackendFor(int threads, IHostEnvironment? environment)
    {
        var (deviceId, fallbackToCpu) = MLContextAccess.GpuSettings(environment);
        if (deviceId is not { } id) return new CpuBackend(threads);
        if (DeviceOpener.Value is { } open) return open(id);
        try
        {
            var gpu = Type.GetType("Ml.Cnn.Gpu.GpuBackend, Ml.Cnn.Gpu", throwOnError: false)
                ?? throw new GpuUnavailableException($"MLContext.GpuDeviceId is {id}, but the Ml.Cnn.Gpu assembly is not " +
                    "part of this application: add the Ml.Cnn.Gpu package.");
            var cuda = gpu.GetMethod("Cuda", [typeof(int)])!;
            try
            {
                return (IBackend)cuda.Invoke(null, [id])!;
            }
            catch (System.Reflection.TargetInvocationException e) when (e.InnerException is not null)
            {
                throw e.InnerException is GpuUnavailableException unavailable ? unavailable
                    : new GpuUnavailableException($"CUDA device {id} could not be opened: {e.InnerException.Message}", e.InnerException);
            }
        }
        catch (GpuUnavailableException e) when (fallbackToCpu)
        {
            MLContextAccess.Log(environment, $"Training on the CPU ({threads} threads, 0 = all cores): {e.Message}");
            return new CpuBackend(threads);
        }
    }

    /// <summary>What makes one fit's network: its layers and, when fine-tuning, the starting weights and frozen layers.</summary>
    private static string Describe(Network network, CnnTrainerOptions options)
    {
        if (options.StartingNetwork is not { } start) return network.Summary();
        var weights = start.StateTensors.SelectMany(t => t.ToArray()).ToArray();
        string digest = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(weights.AsSpan())));
        return $"{network.Summary()}|start {digest}|head {options.ReplaceHead}|frozen {string.Join(",", options.FrozenLayers ?? [])}";
    }

    /// <summary>
    /// The network a fit trains: the starting network's copy, the options' own definition or the zoo's. For
    /// segmentation and detection the zoo is the task's, the outputs are [classes, H, W] (detection: [classes + 4,
    /// H/4, W/4]), and a starting network keeps its head and is resized to the images.
    /// </summary>
    public static Network CreateNetwork(CnnTrainerOptions options, int outputs, TensorShape imageShape, ulong seed, CnnTask task,
        IBackend backend)
    {
        bool dense = task != CnnTask.Classification;
        var network = options.StartingNetwork is { } start ? FromStartingNetwork(options, start, dense ? null : outputs, seed, backend)
            : FromDefinition(options, outputs, imageShape, seed, task, backend);
        if (dense && network.InputShape != imageShape) network.Resize(imageShape);
        if (network.InputShape != imageShape)
            throw new ArgumentException($"StartingNetwork takes images of {network.InputShape} but feature column '{options.FeatureColumnName}' " +
                $"holds {imageShape} (channels × height × width): resize the images to the network's input (ResizeImages).", nameof(options));
        var output = network.OutputShape;
        if (task == CnnTask.Segmentation && (output.Rank != 3 || output[0] != outputs))
            throw new ArgumentException($"A segmentation network outputs [classes, H, W]; this one outputs {output} for {outputs} classes.",
                nameof(options));
        if (task == CnnTask.Detection && (output.Rank != 3 || output[0] != Data.CenterNet.OutputChannels(outputs)
                || output[1] * ModelZoo.CenterNetStride != imageShape[1] || output[2] * ModelZoo.CenterNetStride != imageShape[2]))
            throw new ArgumentException($"A detector outputs [classes + 4, H/{ModelZoo.CenterNetStride}, W/{ModelZoo.CenterNetStride}]; this one " +
                $"outputs {output} for {outputs} classes and images of {imageShape}.", nameof(options));
        if (!dense && network.OutputShape.Length != outputs)
            throw new ArgumentException($"The network produces {network.OutputShape.Length} outputs but {outputs} are needed.", nameof(options));
        foreach (var name in options.FrozenLayers ?? [])
        {
            // A name freezes that layer and, as a PyTorch module path, every layer under it ("layer1" → "layer1.0.conv1").
            var nodes = network.Nodes.Where(n => n.Name == name || n.Name.StartsWith(name + ".", StringComparison.Ordinal)).ToList();
            if (nodes.Count == 0)
                throw new ArgumentOutOfRangeException(nameof(options.FrozenLayers), name,
                    $"FrozenLayers names '{name}', which the network does not have; it has: {string.Join(", ", network.Nodes.Select(n => n.Name))}.");
            foreach (var p in nodes.SelectMany(n => n.Layer.Parameters)) p.Trainable = false;
        }
        return network;
    }

    /// <summary>
    /// A copy of the starting network's weights (through its ONNX form, so the caller's network is never trained in
    /// place and each fold of a cross-validation starts from the same weights), with a fresh last dense layer for
    /// <paramref name="outputs"/> when <see cref="CnnTrainerOptions.ReplaceHead"/> is set.
    /// </summary>
    private static Network FromStartingNetwork(CnnTrainerOptions options, Network start, int? outputs, ulong seed, IBackend backend)
    {
        var bytes = Onnx.OnnxExporter.ToBytes(start);
        return Onnx.OnnxImporter.Import(bytes, backend, options.ReplaceHead ? outputs : null, seed, "StartingNetwork");
    }

    private static Network FromDefinition(CnnTrainerOptions options, int outputs, TensorShape imageShape, ulong seed, CnnTask task,
        IBackend backend)
    {
        var definition = (options.Network is not null ? options.Network(outputs) : task switch
                {
                    CnnTask.Segmentation => ModelZoo.GetSegmentation(options.Architecture, outputs),
                    CnnTask.Detection => ModelZoo.GetDetection(options.Architecture, outputs),
                    _ => ModelZoo.Get(options.Architecture, outputs),
                })
            ?? throw new InvalidOperationException($"CnnTrainerOptions.Network returned null for {outputs} outputs; it must return a network definition.");
        try
        {
            return Network.Create(definition, backend, imageShape, seed);
        }
        catch (ArgumentException e)
        {
            string name = options.Network is null ? $"Architecture '{options.Architecture}'" : "The network of CnnTrainerOptions.Network";
            throw new ArgumentException($"{name} does not fit images of {imageShape} (channels × height × width, from feature column " +
                $"'{options.FeatureColumnName}'): {e.Message} Resize the images (ResizeImages) or choose another architecture.", nameof(options), e);
        }
    }

    /// <summary>Throws unless a validation set's label has the training data's key count.</summary>
    public static void CheckValidationKeys(string labelColumnName, int validationKeys, int trainingKeys)
    {
        if (validationKeys != trainingKeys)
            throw new ArgumentException($"ValidationSet's label '{labelColumnName}' has {validationKeys} keys, the training data's {trainingKeys}: " +
                "map both with the same fitted MapValueToKey.", "input");
    }

    /// <summary>The named column (the last of that name, as ML.NET resolves hidden columns).</summary>
    public static SchemaShape.Column Find(SchemaShape input, string name, string role)
    {
        var matches = input.Where(c => c.Name == name).ToList();
        return matches.Count > 0 ? matches[^1]
            : throw new ArgumentOutOfRangeException(nameof(input), $"{role} column '{name}' not found in the input; it has: {string.Join(", ", input.Select(c => c.Name))}.");
    }

    /// <summary>The input shape plus a classifier's Score and PredictedLabel, after checking the label is a key.</summary>
    public static SchemaShape ClassifierOutputShape(SchemaShape inputSchema, string labelColumnName)
    {
        var label = Find(inputSchema, labelColumnName, "Label");
        if (!label.IsKey)
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Label column '{labelColumnName}' must be a key type, got {label.ItemType}. Map it with mlContext.Transforms.Conversion.MapValueToKey(\"{labelColumnName}\") before the trainer.");
        // A shape carries no sizes: Score is some known-size vector, PredictedLabel a key like the label, with its
        // annotations (MapKeyToValue on PredictedLabel needs the key values to be announced).
        var keyValues = label.Annotations.FirstOrDefault(a => a.Name == ClassifierColumns.KeyValuesKind);
        var added = new DataViewSchema.Builder();
        added.AddColumn("Score", new VectorDataViewType(NumberDataViewType.Single, 1),
            keyValues.Name is null ? null : SchemaShapeAdapter.PlaceholderAnnotations((ClassifierColumns.SlotNamesKind, keyValues)));
        added.AddColumn("PredictedLabel", new KeyDataViewType(((PrimitiveDataViewType)label.ItemType).RawType, int.MaxValue),
            SchemaShapeAdapter.PlaceholderAnnotations(label.Annotations.Select(a => (a.Name, a)).ToArray()));
        return SchemaShapeAdapter.Append(inputSchema, added.ToSchema());
    }

    public static void CheckFeatures(SchemaShape input, string name, bool allowImages = true)
    {
        var features = Find(input, name, "Feature");
        if (allowImages && features.Kind == SchemaShape.Column.VectorKind.Scalar && ImageInput.IsImage(features.ItemType)) return;
        if (features.Kind != SchemaShape.Column.VectorKind.Vector || features.ItemType != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(input),
                $"Feature column '{name}' must be a known-size vector of Single or an image (LoadImages), got {features.Kind} of {features.ItemType}.");
    }
}
