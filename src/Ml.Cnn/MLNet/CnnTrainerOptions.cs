using Ml.Cnn.Networks;
using Ml.Cnn.Training;

namespace Ml.Cnn.MLNet;

/// <summary>
/// Options of the convolutional-network trainers: every training option of <see cref="TrainerOptions"/> (epochs,
/// optimizer, rate and schedule, Nesterov, clipping, validation split, early stopping, best-weight restoring,
/// augmentation, divergence checks, checkpoints, seed) plus the columns, the network and the image shape. Every
/// field has a working default.
/// </summary>
public sealed class CnnTrainerOptions : TrainerOptions
{
    /// <summary>The ML.NET-side defaults, written once (the catalog's optional parameters refer to them).</summary>
    internal static new class Defaults
    {
        public const string LabelColumnName = "Label";
        public const string FeatureColumnName = "Features";
        public const string Architecture = "reference-cnn";
    }

    /// <summary>Label column: a key type for classification (use <c>MapValueToKey</c>), Single for regression.</summary>
    public string LabelColumnName { get; set; } = Defaults.LabelColumnName;

    /// <summary>
    /// Object detection only: the column of boxes, a vector of Single holding x0, y0, x1, y1 in pixels for each object
    /// of the row, in the order of the label column's keys (ML.NET's object-detection convention, "Box").
    /// </summary>
    public string BoundingBoxColumnName { get; set; } = "Box";

    /// <summary>
    /// Feature column: a known-size vector of Single holding channels × height × width values in CHW order (what
    /// <c>ExtractPixels</c> produces; the image shape is read from its dimensions), or an image column (<c>MLImage</c>,
    /// from <c>LoadImages</c>), which the model resizes and extracts itself (<see cref="ImageInput"/>).
    /// </summary>
    public string FeatureColumnName { get; set; } = Defaults.FeatureColumnName;

    /// <summary>A model-zoo architecture (see <c>ModelZoo.Names</c>): "reference-cnn", "lenet5", "resnet20", …</summary>
    public string Architecture { get; set; } = Defaults.Architecture;

    /// <summary>
    /// A network of your own instead of <see cref="Architecture"/>: given the number of outputs (classes, or 1 for
    /// regression), return a new definition. Called once per Fit, so cross-validation gets fresh layers.
    /// </summary>
    public Func<int, NetworkBuilder>? Network { get; set; }

    /// <summary>
    /// Transfer learning: a trained network to start from instead of <see cref="Architecture"/> — an imported ONNX
    /// model (<c>OnnxImporter.Import</c>, e.g. a torchvision export) or a previous fit's <c>Model.Network</c>. Each fit
    /// starts from a copy of its weights (the network passed in is never changed), made through its ONNX form, so
    /// dropout layers, which ONNX export leaves out, are not part of the copy.
    /// </summary>
    public Network? StartingNetwork { get; set; }

    /// <summary>
    /// With <see cref="StartingNetwork"/>: replace its last dense layer by a fresh one with the label's class count (1
    /// output for regression), as fine-tuning on a new task needs. False keeps the trained head, which must then
    /// already have that many outputs.
    /// </summary>
    public bool ReplaceHead { get; set; } = true;

    /// <summary>
    /// Layers whose parameters are not trained (the frozen backbone), by name as <c>Network.Summary()</c> lists them;
    /// a name also freezes the layers under it as a module path ("layer1" freezes "layer1.0.conv1", as in PyTorch).
    /// </summary>
    public IReadOnlyList<string>? FrozenLayers { get; set; }

    /// <summary>
    /// Image channels (0 = from the feature column). With this, <see cref="ImageHeight"/> and <see cref="ImageWidth"/>
    /// all 0 the shape is the column's [C, H, W] dimensions, or for a column without dimensions a square 1- or
    /// 3-channel image of its size; state the shape when neither applies. For an image column they are the size
    /// each image is resized to (default: the starting network's input, else the column's fixed size) and 1 (grey) or
    /// 3 (red, green, blue, the default) channels.
    /// </summary>
    public int ImageChannels { get; set; }

    /// <summary>Image height in pixels (0 = from the feature column).</summary>
    public int ImageHeight { get; set; }

    /// <summary>Image width in pixels (0 = from the feature column).</summary>
    public int ImageWidth { get; set; }

    /// <summary>
    /// A validation set as ML.NET's ImageClassificationTrainer takes one: a data view with the same feature and label
    /// columns (and, for classification, the same label keys) as the training data, used instead of
    /// <see cref="TrainerOptions.ValidationFraction"/> for early stopping and best-weight restoring.
    /// </summary>
    public Microsoft.ML.IDataView? ValidationSet { get; set; }

    /// <summary>CPU threads (0 = all cores). The same seed and thread count give the same model.</summary>
    public int Threads { get; set; }

    /// <summary>A copy that reads the pixels extracted from an image column, of the given shape.</summary>
    internal CnnTrainerOptions ForPixels(string pixelColumn, Tensors.TensorShape shape, Microsoft.ML.IDataView? validationSet)
    {
        var copy = (CnnTrainerOptions)MemberwiseClone();
        (copy.FeatureColumnName, copy.ImageChannels, copy.ImageHeight, copy.ImageWidth) = (pixelColumn, shape[0], shape[1], shape[2]);
        copy.ValidationSet = validationSet;
        return copy;
    }

    /// <summary>Stops Fit after the current batch with <see cref="OperationCanceledException"/>; the last checkpoint stays valid.</summary>
    public CancellationToken Cancellation { get; set; }
}
