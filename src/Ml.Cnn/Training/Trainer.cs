using System.Diagnostics;
using Ml.Cnn.Core;
using Ml.Cnn.Data;
using Ml.Cnn.Losses;
using Ml.Cnn.Networks;
using Ml.Cnn.Optimizers;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Training;

/// <summary>What a training run produced besides the trained network.</summary>
public sealed class TrainingResult(IReadOnlyList<EpochStatistics> history, ChannelNormalization? normalization, int bestEpoch, bool stoppedEarly,
    string? checkpointPath = null)
{
    /// <summary>
    /// The checkpoint file the run wrote and resumes from (null without a checkpoint directory). Through ML.NET it
    /// lies in a subfolder of the checkpoint directory named for the fit's data, options and network.
    /// </summary>
    public string? CheckpointPath { get; } = checkpointPath;

    /// <summary>Per-epoch figures, including epochs run before a resume.</summary>
    public IReadOnlyList<EpochStatistics> History { get; } = history;

    /// <summary>The input standardization the network was trained with (apply it before prediction), if any.</summary>
    public ChannelNormalization? Normalization { get; } = normalization;

    /// <summary>The epoch whose weights the network holds (the best validation epoch when restored).</summary>
    public int BestEpoch { get; } = bestEpoch;

    /// <summary>Whether early stopping ended the run.</summary>
    public bool StoppedEarly { get; } = stoppedEarly;
}

/// <summary>
/// Mini-batch training of a <see cref="Network"/>: reshuffles every epoch, holds out a validation split, applies
/// augmentation and the learning-rate schedule, clips gradients, stops early, checkpoints atomically after every
/// epoch and resumes bit-identically. Cancellation stops after the current batch; the last checkpoint stays valid.
/// </summary>
public static class Trainer
{
    /// <summary>Trains <paramref name="network"/> in place on <paramref name="data"/>.</summary>
    public static TrainingResult Train(Network network, ImageDataset data, TrainerOptions options, CancellationToken cancellation = default)
    {
        options.Validate(data);
        options.Augmentation?.ValidateRange(data);
        FitTo(network, data);
        var lossKind = options.Loss ?? DefaultLoss(data);
        // CenterNet's class count is the network's heatmaps; the check below says so when there are none.
        var loss = lossKind == LossKind.CenterNet ? new CenterNetLoss(Math.Max(1, network.OutputShape[0] - 4)) : CreateLoss(lossKind);
        loss.CheckFits(network.OutputShape, data, lossKind.ToString());
        bool classification = IsClassification(loss);

        var (training, validation) = options.ValidationData is { } held ? (data, held) : Split(data, options.ValidationFraction, options.Seed ?? 0);
        if (classification && options.ValidationData is { } v && v.ClassCount != data.ClassCount)
            throw new ArgumentException($"The validation set has {v.ClassCount} classes, the training data {data.ClassCount}.", nameof(options));
        var normalization = options.InputNormalization ?? (options.NormalizeInputs ? ChannelNormalization.Fit(training) : null);
        using var optimizer = CreateOptimizer(network, options);
        var state = new RunState(new Rng(options.Seed ?? 0));
        var checkpoint = options.CheckpointDirectory is null ? null : Path.Combine(options.CheckpointDirectory, "checkpoint.mlcnn");
        var fingerprint = RunFingerprint.Of(data, options);
        // A schedule object may be reused across runs: its plateau bookkeeping starts afresh unless a checkpoint restores it.
        (options.Schedule.PlateauScale, options.Schedule.PlateauBest, options.Schedule.PlateauWait) = (1, float.PositiveInfinity, 0);
        if (checkpoint is not null)
        {
            CreateCheckpointDirectory(options.CheckpointDirectory!);
            File.Delete(Checkpoint.TemporaryPath(checkpoint)); // left by a save that was killed; the checkpoint itself is whole
            if (File.Exists(checkpoint)) Checkpoint.Load(checkpoint, network, optimizer, options.Schedule, state, fingerprint);
        }
        var divergence = new DivergenceCheck(options.DivergenceFactor, options.DivergencePatience, state.History);

        int batches = (training.Count + options.BatchSize - 1) / options.BatchSize;
        var backend = network.Backend;
        using var batch = new BatchAssembler(training, options.BatchSize, normalization, options.Augmentation, backend)
        {
            // Flips move a detector's targets too: its classes, and the stride of its output map.
            Detection = loss is CenterNetLoss centerNet ? (centerNet.Classes, data.ItemShape[1] / network.OutputShape[1]) : (0, 1),
        };
        using var metrics = new MetricsWindow(backend);
        var clock = Stopwatch.StartNew();
        int firstEpoch = state.CompletedEpochs; // after a resume, the clock covers only this run's epochs
        for (int epoch = state.CompletedEpochs; epoch < options.Epochs && !state.StoppedEarly; epoch++)
        {
            var epochClock = Stopwatch.StartNew();
            var order = Enumerable.Range(0, training.Count).ToArray();
            state.Random.Shuffle(order.AsSpan());
            double lossSum = 0;
            long correct = 0, counted = 0, seen = 0;
            float learningRate = options.LearningRate;
            // A leftover last batch of a single item cannot be normalized by its own statistics; it is dropped (one
            // item an epoch). A batch size of 1 chosen on purpose trains item by item.
            int Size(int b) => Math.Min(options.BatchSize, training.Count - b * options.BatchSize);
            var steps = Enumerable.Range(0, batches).Where(b => Size(b) > 1 || options.BatchSize == 1).ToArray();
            for (int s = 0; s < steps.Length; s++)
            {
                int b = steps[s];
                var indices = order.AsSpan(b * options.BatchSize, Size(b));
                var (x, targets) = s == 0 ? batch.Assemble(indices, state.Random) : batch.UploadPrefetched();
                // The next batch of the epoch is filled on the host while this one trains (on a GPU, while the device
                // works), with the same random draws in the same order as one batch after another.
                if (s + 1 < steps.Length)
                    batch.Prefetch(order.AsMemory(steps[s + 1] * options.BatchSize, Size(steps[s + 1])), state.Random);
                var output = network.Forward(x, training: true);
                var gradient = batch.GradientBuffer(output.Shape);
                // The loss and right answers stay on the backend; the window is read every few batches (a GPU
                // synchronises once then) and at the epoch's end, and each batch is checked and counted in order.
                int slot = metrics.Next(new MetricsWindow.Batch(b, indices.Length,
                    classification ? Labelled(batch.HostTargets(indices.Length)) : 0, optimizer.LearningRate));
                loss.Compute(output, targets, gradient, metrics.Values, slot, checkLabels: false);
                if (classification) backend.CountCorrect(output, targets, ImageDataset.IgnoredLabel, metrics.Values, metrics.CorrectSlot(slot));
                network.Backward(gradient);
                if (options.GradientClipNorm > 0) ClipGradients(network, options.GradientClipNorm);
                learningRate = options.Schedule.Rate(options.LearningRate, epoch, b, batches, options.Epochs);
                optimizer.LearningRate = learningRate;
                optimizer.Step();

                if (metrics.Full || s == steps.Length - 1)
                    metrics.Read((done, batchLoss, right) =>
                    {
                        divergence.CheckBatch(epoch + 1, done.Index + 1, batchLoss, done.LearningRate);
                        lossSum += batchLoss * done.Items;
                        seen += done.Items;
                        (correct, counted) = (correct + right, counted + done.Labelled);
                        double rate = seen / epochClock.Elapsed.TotalSeconds;
                        double remainingItems = (options.Epochs - epoch) * (double)training.Count - seen;
                        options.Progress?.Report(new TrainingProgress(epoch + 1, options.Epochs, done.Index + 1, batches, (float)(lossSum / seen),
                            classification ? (float)correct / Math.Max(1, counted) : float.NaN, learningRate, rate,
                            TimeSpan.FromSeconds(remainingItems / rate), false, float.NaN, float.NaN));
                    });
                cancellation.ThrowIfCancellationRequested();
            }

            // The last step of an epoch (and of the run) is checked too: its loss was computed before the update.
            divergence.CheckWeights(network, epoch + 1, batches, learningRate);
            var (validationLoss, validationAccuracy) = validation is null ? (float.NaN, float.NaN) : Evaluate(network, validation, loss, normalization, options.BatchSize);
            options.Schedule.EndEpoch(validationLoss);
            var statistics = new EpochStatistics(epoch + 1, (float)(lossSum / Math.Max(1, seen)), classification ? (float)correct / Math.Max(1, counted) : float.NaN,
                validationLoss, validationAccuracy, learningRate, epochClock.Elapsed.TotalSeconds);
            state.History.Add(statistics);
            divergence.CheckProgress(batches);
            state.CompletedEpochs = epoch + 1;
            if (validation is not null)
            {
                if (validationLoss < state.BestValidationLoss)
                {
                    state.BestValidationLoss = validationLoss;
                    state.BestEpoch = epoch + 1;
                    state.EpochsWithoutImprovement = 0;
                    if (options.RestoreBestWeights) state.KeepBestWeights(network);
                }
                else if (options.EarlyStoppingPatience > 0 && ++state.EpochsWithoutImprovement >= options.EarlyStoppingPatience)
                    state.StoppedEarly = true;
            }
            else state.BestEpoch = epoch + 1;
            if (checkpoint is not null) Checkpoint.Save(checkpoint, network, optimizer, options.Schedule, state, fingerprint);
            options.Progress?.Report(new TrainingProgress(epoch + 1, options.Epochs, batches, batches, statistics.TrainingLoss, statistics.TrainingAccuracy,
                learningRate, seen / epochClock.Elapsed.TotalSeconds,
                TimeSpan.FromSeconds(clock.Elapsed.TotalSeconds / (epoch + 1 - firstEpoch) * (options.Epochs - epoch - 1)), true, validationLoss, validationAccuracy));
        }

        if (classification) divergence.CheckLearned(training, state.StoppedEarly, batches);
        if (validation is not null && options.RestoreBestWeights && state.BestWeights is not null)
            foreach (var (tensor, values) in network.StateTensors.Zip(state.BestWeights)) tensor.CopyFrom(values);
        return new TrainingResult(state.History, normalization, state.BestEpoch, state.StoppedEarly, checkpoint);
    }

    /// <summary>
    /// Makes the network take the data's items: a fully convolutional network resizes to another image size
    /// (<see cref="Network.Resize"/>); any other mismatch is an error.
    /// </summary>
    private static void FitTo(Network network, ImageDataset data)
    {
        if (data.ItemShape == network.InputShape) return;
        try
        {
            network.Resize(data.ItemShape);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"The network expects items of shape {network.InputShape}, the data has {data.ItemShape}: {e.Message}",
                nameof(data), e);
        }
    }

    /// <summary>
    /// Mean loss and accuracy (NaN for regression; per labelled pixel for segmentation) of the network in evaluation
    /// mode. A fully convolutional network is resized to the data's image size.
    /// </summary>
    public static (float Loss, float Accuracy) Evaluate(Network network, ImageDataset data, Loss loss, ChannelNormalization? normalization, int batchSize = 64)
    {
        FitTo(network, data);
        loss.CheckFits(network.OutputShape, data, loss.GetType().Name);
        using var batch = new BatchAssembler(data, batchSize, normalization, null, network.Backend);
        using var metrics = new MetricsWindow(network.Backend);
        bool classification = IsClassification(loss);
        double lossSum = 0;
        long correct = 0, counted = 0;
        void Count(MetricsWindow.Batch done, float batchLoss, long right) =>
            (lossSum, correct, counted) = (lossSum + batchLoss * done.Items, correct + right, counted + done.Labelled);
        var indices = Enumerable.Range(0, data.Count).ToArray();
        for (int start = 0; start < data.Count; start += batchSize)
        {
            var span = indices.AsSpan(start, Math.Min(batchSize, data.Count - start));
            var (x, targets) = batch.Assemble(span, null);
            var output = network.Forward(x, training: false);
            int slot = metrics.Next(new MetricsWindow.Batch(start, span.Length, classification ? Labelled(batch.HostTargets(span.Length)) : 0, 0));
            loss.Compute(output, targets, batch.GradientBuffer(output.Shape), metrics.Values, slot, checkLabels: false);
            if (classification) network.Backend.CountCorrect(output, targets, ImageDataset.IgnoredLabel, metrics.Values, metrics.CorrectSlot(slot));
            if (metrics.Full) metrics.Read(Count);
        }
        metrics.Read(Count);
        return ((float)(lossSum / data.Count), classification ? (float)correct / Math.Max(1, counted) : float.NaN);
    }

    /// <summary>
    /// The network's outputs (logits or regression values; [classes, H, W] scores for segmentation) for every item,
    /// item after item. A fully convolutional network is resized to the data's image size.
    /// </summary>
    public static float[] Predict(Network network, ImageDataset data, ChannelNormalization? normalization, int batchSize = 64)
    {
        FitTo(network, data);
        using var batch = new BatchAssembler(data, batchSize, normalization, null, network.Backend);
        var result = new float[data.Count * network.OutputShape.Length];
        var indices = Enumerable.Range(0, data.Count).ToArray();
        for (int start = 0; start < data.Count; start += batchSize)
        {
            var span = indices.AsSpan(start, Math.Min(batchSize, data.Count - start));
            var (x, _) = batch.Assemble(span, null);
            network.Forward(x, training: false).ToArray().CopyTo(result, start * network.OutputShape.Length);
        }
        return result;
    }

    /// <summary>The loss object for a kind.</summary>
    public static Loss CreateLoss(LossKind kind) => kind switch
    {
        LossKind.SoftmaxCrossEntropy => new SoftmaxCrossEntropyLoss(),
        LossKind.MulticlassHinge => new MulticlassHingeLoss(),
        LossKind.MeanSquaredError => new MeanSquaredErrorLoss(),
        LossKind.L1 => new L1Loss(),
        LossKind.PixelSoftmaxCrossEntropy => new PixelCrossEntropyLoss(),
        LossKind.CenterNet => throw new ArgumentException("CenterNet's loss needs the class count: new CenterNetLoss(classes).", nameof(kind)),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>The loss a run uses when none is chosen: cross-entropy for labels (per item or per pixel), MSE otherwise.</summary>
    public static LossKind DefaultLoss(ImageDataset data) => data.IsPerPixel ? LossKind.PixelSoftmaxCrossEntropy
        : data.ClassCount > 0 ? LossKind.SoftmaxCrossEntropy : LossKind.MeanSquaredError;

    private static bool IsClassification(Loss loss) => loss is ClassificationLoss or PixelCrossEntropyLoss;

    private static Optimizer CreateOptimizer(Network network, TrainerOptions options) => options.Optimizer switch
    {
        OptimizerKind.Sgd => new Sgd(network.Parameters, options.LearningRate, options.Momentum, options.Nesterov, options.WeightDecay),
        OptimizerKind.Adam => new Adam(network.Parameters, options.LearningRate, weightDecay: options.WeightDecay),
        OptimizerKind.AdamW => new AdamW(network.Parameters, options.LearningRate, weightDecay: options.WeightDecay),
        _ => throw new ArgumentOutOfRangeException(nameof(options), options.Optimizer, "Unknown optimizer."),
    };

    /// <summary>Holds out a seeded random validation subset; the rest trains.</summary>
    internal static (ImageDataset Training, ImageDataset? Validation) Split(ImageDataset data, float fraction, ulong seed)
    {
        if (fraction <= 0) return (data, null);
        var order = Enumerable.Range(0, data.Count).ToArray();
        new Rng(seed ^ 0x5EED_5A17_0000_0001UL).Shuffle(order.AsSpan());
        int validationCount = (int)(data.Count * fraction);
        return (data.Subset(order[validationCount..]), data.Subset(order[..validationCount]));
    }

    /// <summary>Creates the folder before the first epoch, so a path that cannot be one fails now, not an epoch later.</summary>
    private static void CreateCheckpointDirectory(string directory)
    {
        try
        {
            Directory.CreateDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"CheckpointDirectory '{directory}' cannot be created: {e.Message}", nameof(TrainerOptions.CheckpointDirectory), e);
        }
    }

    private static void ClipGradients(Network network, float maxNorm)
    {
        var gradients = network.Parameters.Where(p => p.Trainable).Select(p => p.Gradient).ToArray();
        double norm = Math.Sqrt(network.Backend.SumOfSquares(gradients));
        if (!(norm > maxNorm)) return;
        float scale = (float)(maxNorm / norm);
        foreach (var g in gradients) g.Backend.Scale(g, scale);
    }

    /// <summary>The labels that count: one per item, or one per pixel that is not ignored.</summary>
    private static long Labelled(ReadOnlySpan<float> labels)
    {
        long labelled = 0;
        foreach (float label in labels)
            if (label != ImageDataset.IgnoredLabel) labelled++;
        return labelled;
    }
}

/// <summary>
/// Stops a run that has left the rails: a loss that is NaN or infinite, one that rises above
/// <see cref="TrainerOptions.DivergenceFactor"/> times its reference level (the lowest epoch mean so far, or the run's
/// first batch before any epoch ends), weights that are no longer finite after an epoch's last step, a training loss
/// that stalls for <see cref="TrainerOptions.DivergencePatience"/> epochs, and a classifier that never beat chance.
/// </summary>
internal sealed class DivergenceCheck(float factor, int patience, IReadOnlyList<EpochStatistics> history)
{
    // Losses this small carry no scale: a jump from 1e-6 to 1e-3 is a fluctuation of a fitted model, not divergence.
    private const float LossFloor = 1e-2f;
    // A run this long that never beat a constant answer learned nothing; shorter ones may still be warming up.
    private const int ChanceEpochs = 3;
    private float _firstBatch = float.NaN;

    public void CheckBatch(int epoch, int batch, float loss, float learningRate)
    {
        if (!float.IsFinite(loss)) throw new TrainingDivergedException(epoch, batch, loss, learningRate);
        if (float.IsNaN(_firstBatch)) _firstBatch = loss;
        if (factor <= 0) return;
        float reference = history.Count > 0 ? history.Min(h => h.TrainingLoss) : _firstBatch;
        float limit = factor * Math.Max(reference, LossFloor);
        if (loss > limit)
            throw new TrainingDivergedException(epoch, batch, loss, learningRate,
                $"the loss is {loss}, more than {factor}× its level so far ({reference})");
    }

    /// <summary>A training loss that has not fallen below its best for <c>patience</c> epochs in a row: the run has stalled.</summary>
    public void CheckProgress(int batches)
    {
        if (patience <= 0 || history.Count <= patience) return;
        float best = history.Take(history.Count - patience).Min(h => h.TrainingLoss);
        if (history.Skip(history.Count - patience).Any(h => h.TrainingLoss < best)) return;
        var last = history[^1];
        throw new TrainingDivergedException(last.Epoch, batches, last.TrainingLoss, last.LearningRate,
            $"the training loss has not fallen below {best} (epoch {history.First(h => h.TrainingLoss == best).Epoch}) for {patience} epochs");
    }

    /// <summary>
    /// A classifier whose training accuracy never rose above chance — the share of the most frequent class, what
    /// always giving that answer scores — in a completed run of <see cref="ChanceEpochs"/> or more epochs has learned
    /// nothing (dead units after a step too large, a rate too small); it is refused rather than returned.
    /// </summary>
    public void CheckLearned(ImageDataset training, bool stoppedEarly, int batches)
    {
        if (factor <= 0 || stoppedEarly || history.Count < ChanceEpochs) return;
        var counts = new int[training.ClassCount];
        foreach (var t in training.Targets)
            if (t != ImageDataset.IgnoredLabel) counts[(int)t]++;
        double chance = counts.Max() / (double)Math.Max(1, counts.Sum());
        // Where one class is nearly all the data, chance is near perfect accuracy and says nothing about learning.
        if (chance >= 0.95) return;
        if (history.All(h => h.TrainingAccuracy <= chance + 0.01))
        {
            var last = history[^1];
            throw new TrainingDivergedException(last.Epoch, batches, last.TrainingLoss, last.LearningRate,
                $"training accuracy stayed at chance ({chance * 100:F1}%, what always answering the most frequent class scores) for all {history.Count} epochs");
        }
    }

    public void CheckWeights(Network network, int epoch, int batch, float learningRate)
    {
        // One norm over every parameter (one read); only a non-finite one is looked for parameter by parameter.
        if (double.IsFinite(network.Backend.SumOfSquares(network.Parameters.Select(p => p.Value).ToArray()))) return;
        foreach (var p in network.Parameters)
            if (!double.IsFinite(p.Value.Backend.SumOfSquares(p.Value)))
                throw new TrainingDivergedException(epoch, batch, float.NaN, learningRate,
                    $"parameter '{p.Name}' is no longer finite after the last step");
    }
}

/// <summary>Everything besides the network and optimizer that a checkpoint must restore to resume bit-identically.</summary>
internal sealed class RunState(Rng random)
{
    public Rng Random { get; } = random;
    public int CompletedEpochs { get; set; }
    public List<EpochStatistics> History { get; } = [];
    public float BestValidationLoss { get; set; } = float.PositiveInfinity;
    public int BestEpoch { get; set; }
    public int EpochsWithoutImprovement { get; set; }
    public bool StoppedEarly { get; set; }
    public List<float[]>? BestWeights { get; set; }

    /// <summary>Copies the network's state into <see cref="BestWeights"/>, reusing its arrays after the first time.</summary>
    public void KeepBestWeights(Network network)
    {
        var tensors = network.StateTensors.ToList();
        BestWeights ??= tensors.Select(t => new float[t.Length]).ToList();
        for (int i = 0; i < tensors.Count; i++) tensors[i].Storage.CopyTo(BestWeights[i]);
    }
}

/// <summary>
/// Copies items into reusable batch tensors, augmenting and normalizing on the way. Two host slots let the next batch
/// be filled by a background task (<see cref="Prefetch"/>) while the current one trains; only one fill runs at a time,
/// and uploads stay on the caller's thread, which alone uses the backend.
/// </summary>
internal sealed class BatchAssembler(ImageDataset data, int batchSize, ChannelNormalization? normalization, Augmentation? augmentation,
    Ml.Cnn.Backends.IBackend backend) : IDisposable
{
    private readonly float[][] _features = [new float[batchSize * data.ItemShape.Length], new float[batchSize * data.ItemShape.Length]];
    private readonly float[][] _targets = [new float[batchSize * data.TargetLength], new float[batchSize * data.TargetLength]];
    private readonly float[] _scratch = new float[data.ItemShape.Length];
    private readonly BufferCache _buffers = new(backend);
    private int _slot; // the slot of the batch last uploaded
    private Task<int>? _pending; // fills the other slot; its result is the batch's size

    /// <summary>For CenterNet targets, their class count and the output map's stride; (0, 1) for other targets.</summary>
    public (int Classes, int Stride) Detection { get; init; } = (0, 1);

    /// <summary>Fills and uploads a batch now.</summary>
    public (Tensor X, Tensor Targets) Assemble(ReadOnlySpan<int> indices, Rng? random)
    {
        WaitForPending();
        Fill(_slot, indices, random);
        return Upload(_slot, indices.Length);
    }

    /// <summary>
    /// Starts filling the next batch in the other slot; <paramref name="random"/> must not be used elsewhere until
    /// <see cref="UploadPrefetched"/> (or <see cref="Dispose"/>) returns.
    /// </summary>
    public void Prefetch(ReadOnlyMemory<int> indices, Rng? random)
    {
        WaitForPending();
        int slot = 1 - _slot;
        _pending = Task.Run(() =>
        {
            Fill(slot, indices.Span, random);
            return indices.Length;
        });
    }

    /// <summary>Uploads the prefetched batch (waiting for its fill) and makes its slot the current one.</summary>
    public (Tensor X, Tensor Targets) UploadPrefetched()
    {
        var pending = _pending ?? throw new InvalidOperationException("No batch was prefetched.");
        _pending = null;
        int count = pending.GetAwaiter().GetResult(); // a fill's exception surfaces here, as it would have inline
        _slot = 1 - _slot;
        return Upload(_slot, count);
    }

    private void Fill(int slot, ReadOnlySpan<int> indices, Rng? random)
    {
        int size = data.ItemShape.Length;
        var shape = data.ItemShape;
        bool augment = random is not null && augmentation is { Enabled: true } && shape.Rank == 3;
        for (int i = 0; i < indices.Length; i++)
        {
            var item = _features[slot].AsSpan(i * size, size);
            data.CopyItem(indices[i], item);
            var targets = _targets[slot].AsSpan(i * data.TargetLength, data.TargetLength);
            data.Targets.AsSpan(indices[i] * data.TargetLength, data.TargetLength).CopyTo(targets);
            if (augment)
                augmentation!.Apply(item, _scratch, shape[0], shape[1], shape[2], random!, data.IsPerPixel || Detection.Classes > 0 ? targets : default,
                    Detection.Classes, Detection.Stride);
            normalization?.Apply(item);
        }
    }

    private (Tensor X, Tensor Targets) Upload(int slot, int n)
    {
        var x = _buffers.Get("x", data.ItemShape.Prepend(n));
        var y = _buffers.Get("y", data.TargetLength == 1 ? new TensorShape(n) : new TensorShape(n, data.TargetLength));
        x.CopyFrom(_features[slot].AsSpan(0, n * data.ItemShape.Length));
        y.CopyFrom(_targets[slot].AsSpan(0, n * data.TargetLength));
        return (x, y);
    }

    private void WaitForPending()
    {
        if (_pending is null) return;
        try
        {
            _pending.Wait();
        }
        catch (AggregateException)
        {
            // An abandoned fill's failure: the batch it filled is not used.
        }
        _pending = null;
    }

    /// <summary>The targets of the last uploaded batch, as copied on the host.</summary>
    public ReadOnlySpan<float> HostTargets(int count) => _targets[_slot].AsSpan(0, count * data.TargetLength);

    public Tensor GradientBuffer(TensorShape shape) => _buffers.Get("output gradient", shape);

    /// <summary>Waits for a fill still running (a run that stopped early), then releases the buffers (device memory on a GPU).</summary>
    public void Dispose()
    {
        WaitForPending();
        _buffers.Dispose();
    }
}
