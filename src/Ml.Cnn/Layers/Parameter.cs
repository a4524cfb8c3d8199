using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>A trainable tensor and the gradient that the owning layer's backward pass writes into.</summary>
public sealed class Parameter(string name, Tensor value, bool decays)
{
    /// <summary>Name within the layer ("weight", "bias", "gamma", …).</summary>
    public string Name { get; } = name;

    /// <summary>The values.</summary>
    public Tensor Value { get; } = value;

    /// <summary>∂loss/∂value from the latest backward pass.</summary>
    public Tensor Gradient { get; } = value.Backend.Allocate(value.Shape);

    /// <summary>Whether weight decay applies (weights yes; biases and normalization scales no).</summary>
    public bool Decays { get; } = decays;

    /// <summary>Frozen parameters keep their values during training (for fine-tuning).</summary>
    public bool Trainable { get; set; } = true;
}
