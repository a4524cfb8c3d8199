using Ml.Cnn.Data;
using Ml.Cnn.Networks;
using Ml.Cnn.Training;

namespace Ml.Cnn.MLNet;

/// <summary>Options of the convolutional-network trainers; every field has a working default.</summary>
public sealed class CnnTrainerOptions
{
    /// <summary>Label column: a key type for classification (use <c>MapValueToKey</c>), Single for regression.</summary>
    public string LabelColumnName = "Label";

    /// <summary>
    /// Feature column: a known-size vector of Single holding channels × height × width values in CHW order (what
    /// <c>ExtractPixels</c> produces); the image shape is read from its dimensions.
    /// </summary>
    public string FeatureColumnName = "Features";

    /// <summary>A model-zoo architecture (see <c>ModelZoo.Names</c>): "reference-cnn", "lenet5", "resnet20", …</summary>
    public string Architecture = "reference-cnn";

    /// <summary>
    /// A network of your own instead of <see cref="Architecture"/>: given the number of outputs (classes, or 1 for
    /// regression), return a new definition. Called once per Fit, so cross-validation gets fresh layers.
    /// </summary>
    public Func<int, NetworkBuilder>? Network;

    /// <summary>
    /// Image channels (0 = from the feature column). With this, <see cref="ImageHeight"/> and <see cref="ImageWidth"/>
    /// all 0 the shape is the column's [C, H, W] dimensions, or for a column without dimensions a square 1- or
    /// 3-channel image of its size; state the shape when neither applies.
    /// </summary>
    public int ImageChannels;

    /// <summary>Image height in pixels (0 = infer).</summary>
    public int ImageHeight;

    /// <summary>Image width in pixels (0 = infer).</summary>
    public int ImageWidth;

    /// <summary>
    /// The objective: softmax cross-entropy (default) or multiclass hinge for classification; mean squared error
    /// (default) or L1 for regression. Null picks the default.
    /// </summary>
    public LossKind? Loss;

    /// <summary>Passes over the training data.</summary>
    public int Epochs = 10;

    /// <summary>Images per mini-batch.</summary>
    public int BatchSize = 64;

    /// <summary>The update rule.</summary>
    public OptimizerKind Optimizer = OptimizerKind.Sgd;

    /// <summary>Base learning rate.</summary>
    public float LearningRate = 0.01f;

    /// <summary>SGD momentum.</summary>
    public float Momentum = 0.9f;

    /// <summary>Learning-rate schedule and warm-up.</summary>
    public LearningRateSchedule Schedule = new();

    /// <summary>Weight decay on weights (not biases).</summary>
    public float WeightDecay;

    /// <summary>Random transformations of training images (null = none).</summary>
    public Augmentation? Augmentation;

    /// <summary>Standardize each channel with the training data's statistics (stored in the model and applied when scoring).</summary>
    public bool NormalizeInputs;

    /// <summary>Fraction of the training data held out for validation and early stopping (0 = none).</summary>
    public float ValidationFraction;

    /// <summary>Stop after this many epochs without a better validation loss (0 = never).</summary>
    public int EarlyStoppingPatience;

    /// <summary>Seed of weight initialization, shuffling, the validation split and augmentation.</summary>
    public int Seed = 1;

    /// <summary>CPU threads (0 = all cores). The same seed and thread count give the same model.</summary>
    public int Threads;

    /// <summary>Directory for per-epoch checkpoints; an existing checkpoint there is resumed (null = none).</summary>
    public string? CheckpointDirectory;

    /// <summary>Receives per-batch and per-epoch progress.</summary>
    public IProgress<TrainingProgress>? Progress;

    /// <summary>Stops Fit after the current batch with <see cref="OperationCanceledException"/>; the last checkpoint stays valid.</summary>
    public CancellationToken Cancellation;

    internal TrainerOptions ToTrainerOptions(LossKind loss) => new()
    {
        Epochs = Epochs,
        BatchSize = BatchSize,
        Optimizer = Optimizer,
        LearningRate = LearningRate,
        Momentum = Momentum,
        WeightDecay = WeightDecay,
        Schedule = new LearningRateSchedule
        {
            Kind = Schedule.Kind, Factor = Schedule.Factor, StepEpochs = Schedule.StepEpochs, Patience = Schedule.Patience,
            MinRate = Schedule.MinRate, WarmupEpochs = Schedule.WarmupEpochs,
        },
        Loss = loss,
        ValidationFraction = ValidationFraction,
        EarlyStoppingPatience = EarlyStoppingPatience,
        Augmentation = Augmentation,
        NormalizeInputs = NormalizeInputs,
        Seed = (ulong)Seed,
        CheckpointDirectory = CheckpointDirectory,
        Progress = Progress,
    };
}
