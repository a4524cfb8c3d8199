using Ml.Cnn.Data;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Training;

namespace Ml.Cnn.MLNet;

/// <summary>A trained network with what scoring needs besides it: the image shape and the input standardization.</summary>
public sealed class CnnModel : IDisposable
{
    private readonly BufferCache _buffers;

    internal CnnModel(Network network, ChannelNormalization? normalization, TrainingResult? training, ImageInput? imageInput = null)
    {
        _buffers = new BufferCache(network.Backend);
        Network = network;
        ImageShape = network.InputShape;
        ImageInput = imageInput;
        Normalization = normalization;
        Training = training;
    }

    /// <summary>
    /// Releases the network's memory and the backend its fit opened (on a GPU, its device memory); the transformer
    /// holding the model does this when disposed.
    /// </summary>
    public void Dispose()
    {
        _buffers.Dispose();
        Network.Dispose();
        (Network.Backend as IDisposable)?.Dispose();
    }

    /// <summary>The trained network (its summary, layers and parameters).</summary>
    public Network Network { get; }

    /// <summary>The network at <see cref="ImageShape"/>, for exports: back from any other size it has run on since.</summary>
    internal Network ScoringNetwork
    {
        get
        {
            lock (_buffers) Network.Resize(ImageShape);
            return Network;
        }
    }

    /// <summary>The per-channel standardization applied to inputs, if training used one.</summary>
    public ChannelNormalization? Normalization { get; }

    /// <summary>The training history (null for models not trained in this process).</summary>
    public TrainingResult? Training { get; }

    /// <summary>For a model trained on an image column: how its images become the network's input (null for pixel vectors).</summary>
    public ImageInput? ImageInput { get; }

    /// <summary>
    /// Per-item input shape [C, H, W] the model scores: fixed when it was trained, even if its fully convolutional
    /// network has since run on another size (the network resizes back when the model scores).
    /// </summary>
    public TensorShape ImageShape { get; }

    /// <summary>
    /// Writes the model as ONNX (opset 13): input "input" [N, C, H, W] of raw features (the training standardization
    /// is part of the graph), output "output": class probabilities for classifiers (<paramref name="probabilities"/>),
    /// otherwise the network's outputs. Runs in ONNX Runtime or ML.NET's <c>ApplyOnnxModel</c>.
    /// </summary>
    /// <param name="path">The file to write (atomically).</param>
    /// <param name="probabilities">End with a softmax (classifiers).</param>
    /// <param name="inputName">The graph input's name: name it after the feature column ("Features") and
    /// <c>ApplyOnnxModel("Score", "Features", path)</c> runs the file on the same data view.</param>
    /// <param name="outputName">The graph output's name.</param>
    /// <param name="classNames">Class names in output order, stored as the model's "class_names" metadata.</param>
    public void ExportToOnnx(string path, bool probabilities = true, string inputName = "input", string outputName = "output",
        IReadOnlyList<string>? classNames = null) =>
        Onnx.OnnxExporter.Export(ScoringNetwork, path, probabilities, Normalization, inputName, outputName, classNames);

    /// <summary>
    /// Runs <paramref name="count"/> CHW inputs through the network up to <paramref name="layer"/> (null = output),
    /// optionally turning the output scores into probabilities.
    /// </summary>
    internal void Run(float[] inputs, int count, float[] outputs, string? layer, bool probabilities = false)
    {
        // The network reuses its activation buffers: every transformer of this model (classifier, featurizers) waits its turn.
        lock (_buffers) RunLocked(inputs, count, outputs, layer, probabilities);
    }

    private void RunLocked(float[] inputs, int count, float[] outputs, string? layer, bool probabilities)
    {
        int size = ImageShape.Length;
        if (Normalization is not null)
            for (int i = 0; i < count; i++) Normalization.Apply(inputs.AsSpan(i * size, size));
        var x = _buffers.Get("input", ImageShape.Prepend(count));
        x.CopyFrom(inputs.AsSpan(0, count * size));
        var y = layer is null ? Network.Forward(x, training: false) : Network.ForwardTo(x, false, layer);
        if (probabilities)
        {
            var p = _buffers.Get("probabilities", y.Shape);
            Network.Backend.SoftmaxForward(y, p);
            y = p;
        }
        y.Storage.CopyTo(outputs.AsSpan(0, y.Length));
    }
}
