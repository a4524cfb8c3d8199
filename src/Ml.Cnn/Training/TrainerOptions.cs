using Ml.Cnn.Data;

namespace Ml.Cnn.Training;

/// <summary>The optimizers the trainer offers.</summary>
public enum OptimizerKind
{
    /// <summary>Stochastic gradient descent with momentum (and optional Nesterov).</summary>
    Sgd,
    /// <summary>Adam with L2 weight decay.</summary>
    Adam,
    /// <summary>Adam with decoupled weight decay.</summary>
    AdamW,
}

/// <summary>The objectives the trainer offers.</summary>
public enum LossKind
{
    /// <summary>Softmax cross-entropy over class scores (classification).</summary>
    SoftmaxCrossEntropy,
    /// <summary>Multiclass SVM hinge loss over class scores (classification).</summary>
    MulticlassHinge,
    /// <summary>Mean squared error (regression).</summary>
    MeanSquaredError,
    /// <summary>Mean absolute error (regression).</summary>
    L1,
    /// <summary>Softmax cross-entropy at every pixel (segmentation; the default for per-pixel labels).</summary>
    PixelSoftmaxCrossEntropy,
    /// <summary>
    /// CenterNet's focal heatmap and L1 box loss (object detection): targets as <c>CenterNet.Encode</c> writes them,
    /// the class count taken from the network's output channels.
    /// </summary>
    CenterNet,
}

/// <summary>
/// Everything that controls a training run. Defaults train a small CNN sensibly. The ML.NET trainers' options
/// (<c>CnnTrainerOptions</c>) extend this class, so every training option is defined once.
/// </summary>
public class TrainerOptions
{
    /// <summary>The defaults, written once (the catalog's optional parameters refer to them).</summary>
    internal static class Defaults
    {
        public const int Epochs = 10;
        public const int BatchSize = 64;
        public const float LearningRate = 0.01f;
        public const float Momentum = 0.9f;
        public const float DivergenceFactor = 1e3f;
    }

    /// <summary>Passes over the training data.</summary>
    public int Epochs { get; set; } = Defaults.Epochs;

    /// <summary>Items per mini-batch.</summary>
    public int BatchSize { get; set; } = Defaults.BatchSize;

    /// <summary>The update rule.</summary>
    public OptimizerKind Optimizer { get; set; } = OptimizerKind.Sgd;

    /// <summary>Base learning rate (before schedule and warm-up).</summary>
    public float LearningRate { get; set; } = Defaults.LearningRate;

    /// <summary>SGD momentum.</summary>
    public float Momentum { get; set; } = Defaults.Momentum;

    /// <summary>Use Nesterov momentum with SGD.</summary>
    public bool Nesterov { get; set; }

    /// <summary>Weight decay (L2 for SGD and Adam, decoupled for AdamW); applies to weights, not biases.</summary>
    public float WeightDecay { get; set; }

    /// <summary>The learning-rate schedule.</summary>
    public LearningRateSchedule Schedule { get; set; } = new();

    /// <summary>Rescale gradients whose global L2 norm exceeds this (0 = no clipping).</summary>
    public float GradientClipNorm { get; set; }

    /// <summary>
    /// The objective; null picks it from the data: softmax cross-entropy for class labels, mean squared error for
    /// regression targets. Classification also trains with multiclass hinge, regression with L1.
    /// </summary>
    public LossKind? Loss { get; set; }

    /// <summary>Fraction of the training data held out for validation (0 = none).</summary>
    public float ValidationFraction { get; set; }

    /// <summary>
    /// A validation set held out by the caller, instead of <see cref="ValidationFraction"/> of the training data: the
    /// same item shape and classes as the training data. Early stopping, plateau schedules and best-weight restoring
    /// use it as they use a split.
    /// </summary>
    public ImageDataset? ValidationData { get; set; }

    /// <summary>Stop after this many epochs without a better validation loss (0 = never).</summary>
    public int EarlyStoppingPatience { get; set; }

    /// <summary>
    /// Stop with <see cref="TrainingDivergedException"/> when a batch's loss exceeds this many times its level so far
    /// (the lowest epoch mean, or the first batch's loss in the first epoch), or when a classifier's training accuracy
    /// stays at chance for a whole run of 3 or more epochs; 0 turns both checks off. NaN or infinite losses and weights
    /// always stop the run.
    /// </summary>
    public float DivergenceFactor { get; set; } = Defaults.DivergenceFactor;

    /// <summary>
    /// Stop with <see cref="TrainingDivergedException"/> when the training loss (the epoch mean) has not fallen below
    /// its best for this many epochs in a row: a run that stalls rather than explodes. 0 (the default) turns it off.
    /// </summary>
    public int DivergencePatience { get; set; }

    /// <summary>With a validation split, end with the weights of the best validation epoch.</summary>
    public bool RestoreBestWeights { get; set; } = true;

    /// <summary>Random transformations of training images (null = none).</summary>
    public Augmentation? Augmentation { get; set; }

    /// <summary>Standardize each channel with the training data's mean and standard deviation.</summary>
    public bool NormalizeInputs { get; set; }

    /// <summary>
    /// Standardize each channel with these fixed statistics instead (for a pretrained network, the ones it was trained
    /// with: <see cref="ChannelNormalization.ImageNet"/> for torchvision's). Recorded in the model and its exports.
    /// </summary>
    public ChannelNormalization? InputNormalization { get; set; }

    /// <summary>
    /// Seed of weight initialization (through ML.NET), shuffling, the validation split and augmentation. Null: 0 for
    /// <c>Trainer.Train</c>; through ML.NET, a seed drawn from the MLContext's (<c>new MLContext(seed: n)</c>), as its own
    /// trainers do.
    /// </summary>
    public ulong? Seed { get; set; }

    /// <summary>Where to write a checkpoint after every epoch and to resume from if one exists (null = no checkpoints).</summary>
    public string? CheckpointDirectory { get; set; }

    /// <summary>Receives per-batch and per-epoch progress.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>
    /// Checks every option that does not depend on the data, naming the option and its value: enums in range, numbers
    /// finite and in range (the ML.NET trainers call it when they are created).
    /// </summary>
    internal void ValidateSettings()
    {
        Require(Epochs > 0, nameof(Epochs), Epochs, "must be positive");
        Require(BatchSize > 0, nameof(BatchSize), BatchSize, "must be positive");
        Require(Enum.IsDefined(Optimizer), nameof(Optimizer), Optimizer, "is not an optimizer");
        Require(Loss is null || Enum.IsDefined(Loss.Value), nameof(Loss), Loss!, "is not a loss");
        Require(LearningRate > 0 && float.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "must be a positive number");
        Require(Momentum is >= 0 and < 1, nameof(Momentum), Momentum, "must be in [0, 1)");
        Require(WeightDecay >= 0 && float.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "must be a non-negative number");
        Require(GradientClipNorm >= 0 && float.IsFinite(GradientClipNorm), nameof(GradientClipNorm), GradientClipNorm, "must be a non-negative number");
        Require(DivergenceFactor == 0 || DivergenceFactor > 1 && float.IsFinite(DivergenceFactor), nameof(DivergenceFactor), DivergenceFactor,
            "must be 0 (off) or a number above 1");
        Require(DivergencePatience >= 0, nameof(DivergencePatience), DivergencePatience, "must be 0 (off) or positive");
        Require(ValidationFraction is >= 0 and < 1, nameof(ValidationFraction), ValidationFraction, "must be in [0, 1)");
        Require(EarlyStoppingPatience >= 0, nameof(EarlyStoppingPatience), EarlyStoppingPatience, "must not be negative");
        Require(ValidationData is null || ValidationFraction == 0, nameof(ValidationFraction), ValidationFraction,
            "must be 0 when a validation set is given");
        Require(InputNormalization is null || !NormalizeInputs, nameof(NormalizeInputs), NormalizeInputs,
            "must be false when InputNormalization gives fixed statistics");
        if (InputNormalization is { } n)
            Require(n.Mean.Length > 0 && n.Mean.Length == n.Std.Length && n.Std.All(v => v > 0 && float.IsFinite(v)) && n.Mean.All(float.IsFinite),
                nameof(InputNormalization), $"{n.Mean.Length} means and {n.Std.Length} deviations",
                "needs one finite mean and one positive standard deviation per channel");
        Schedule.Validate(LearningRate);
    }

    internal const string DetectionAugmentation =
        "must not crop or rotate for a detector: it would move objects off the cells its targets hold them in (flips move the boxes too)";

    /// <summary>
    /// Checks every option before any data is touched: <see cref="ValidateSettings"/>, then the data-dependent ones
    /// (crop padding, the validation set's shape and targets) against the training data.
    /// </summary>
    internal void Validate(ImageDataset data)
    {
        ValidateSettings();
        if (ValidationData is { } v)
        {
            Require(v.Count > 0, nameof(ValidationData), v.Count, "must hold at least one item");
            Require(v.ItemShape == data.ItemShape, nameof(ValidationData), v.ItemShape, $"must hold items of the training data's shape {data.ItemShape}");
            Require(v.TargetLength == data.TargetLength && v.ClassCount == data.ClassCount, nameof(ValidationData),
                $"{v.TargetLength} targets per item, {v.ClassCount} classes",
                $"must have the training data's {data.TargetLength} targets per item and {data.ClassCount} classes");
        }
        Augmentation?.Validate(data.ItemShape);
        Require(!data.IsPerPixel || Augmentation is not { MaxRotationDegrees: > 0 }, "Augmentation.MaxRotationDegrees",
            Augmentation?.MaxRotationDegrees ?? 0, "must be 0 for segmentation (rotating would blend pixel labels; flips and crops move them)");
        Require(Loss != LossKind.CenterNet || Augmentation is not { CropsOrRotates: true }, nameof(Augmentation), "crops or rotation",
            DetectionAugmentation);
        int channels = data.ItemShape.Rank == 3 ? data.ItemShape[0] : 1;
        if (InputNormalization is { } fixedStatistics)
            Require(fixedStatistics.Mean.Length == channels, nameof(InputNormalization), $"{fixedStatistics.Mean.Length} channels",
                $"must have the data's {channels} channels");
        if (data.Count == 0) throw new ArgumentException("The training set is empty.");
        if (ValidationFraction > 0 && (int)(data.Count * ValidationFraction) == 0)
            throw new ArgumentException($"A validation fraction of {ValidationFraction} leaves no validation items out of {data.Count}.");
    }

    /// <summary>
    /// A copy for one run: training writes the schedule's plateau state, and the ML.NET trainers set the loss and the
    /// fit's checkpoint folder, none of which may reach the caller's object.
    /// </summary>
    internal TrainerOptions CopyForRun()
    {
        var copy = (TrainerOptions)MemberwiseClone();
        copy.Schedule = Schedule.Copy();
        return copy;
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the option unless <paramref name="condition"/> holds.</summary>
    internal static void Require(bool condition, string option, object value, string rule)
    {
        if (!condition) throw new ArgumentOutOfRangeException(option, value, $"{option} {rule}; it is {value}.");
    }
}

/// <summary>Progress of a run: after each batch, and once more at the end of each epoch with validation figures.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Epochs">Epochs planned.</param>
/// <param name="Batch">1-based batch within the epoch.</param>
/// <param name="Batches">Batches per epoch.</param>
/// <param name="Loss">Mean training loss so far this epoch.</param>
/// <param name="Accuracy">Training accuracy so far this epoch (NaN for regression).</param>
/// <param name="LearningRate">Learning rate of the latest step.</param>
/// <param name="ImagesPerSecond">Training throughput this epoch.</param>
/// <param name="Remaining">Estimated time to the end of the run.</param>
/// <param name="EpochEnd">True for the end-of-epoch report.</param>
/// <param name="ValidationLoss">Validation loss at epoch end (NaN without a validation split).</param>
/// <param name="ValidationAccuracy">Validation accuracy at epoch end (NaN without one).</param>
public sealed record TrainingProgress(int Epoch, int Epochs, int Batch, int Batches, float Loss, float Accuracy, float LearningRate,
    double ImagesPerSecond, TimeSpan Remaining, bool EpochEnd, float ValidationLoss, float ValidationAccuracy);

/// <summary>One epoch's figures.</summary>
public sealed record EpochStatistics(int Epoch, float TrainingLoss, float TrainingAccuracy, float ValidationLoss, float ValidationAccuracy,
    float LearningRate, double Seconds);

/// <summary>
/// The loss became NaN or infinite, rose far above its level, or the weights stopped being finite; the model is not
/// returned.
/// </summary>
public sealed class TrainingDivergedException(int epoch, int batch, float loss, float learningRate, string? reason = null)
    : Exception($"Training diverged at epoch {epoch}, batch {batch}: {reason ?? $"the loss is {loss}"}. " +
        $"Try a lower learning rate (it was {learningRate}), gradient clipping, or input normalization.")
{
    /// <summary>The loss at that batch (NaN when the weights, not the loss, went wrong).</summary>
    public float Loss { get; } = loss;

    /// <summary>The learning rate of that step.</summary>
    public float LearningRate { get; } = learningRate;

    /// <summary>1-based epoch.</summary>
    public int Epoch { get; } = epoch;

    /// <summary>1-based batch.</summary>
    public int Batch { get; } = batch;
}
