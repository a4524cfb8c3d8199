using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>
/// A trainable tensor and the gradient that the owning layer's backward pass writes into. Declared with its shape
/// when a layer is built; memory is allocated (and the initializer run) only when the network is materialized, so a
/// summary of VGG-19 costs no gigabytes.
/// </summary>
public sealed class Parameter(string name, TensorShape shape, bool decays, Action<Span<float>, Rng>? initializer = null)
{
    private Tensor? _value, _gradient;

    /// <summary>Creates an allocated parameter holding <paramref name="value"/> (for optimizers used on their own).</summary>
    public Parameter(string name, Tensor value, bool decays) : this(name, value.Shape, decays)
    {
        _value = value;
        _gradient = value.Backend.Allocate(value.Shape);
    }

    /// <summary>Name within the layer ("weight", "bias", "gamma", …).</summary>
    public string Name { get; } = name;

    /// <summary>The shape.</summary>
    public TensorShape Shape { get; } = shape;

    /// <summary>The values.</summary>
    public Tensor Value => _value ?? throw new InvalidOperationException($"Parameter '{Name}' {Shape} is declared but not allocated.");

    /// <summary>∂loss/∂value from the latest backward pass.</summary>
    public Tensor Gradient => _gradient ?? throw new InvalidOperationException($"Parameter '{Name}' {Shape} is declared but not allocated.");

    /// <summary>Whether weight decay applies (weights yes; biases and normalization scales no).</summary>
    public bool Decays { get; } = decays;

    /// <summary>Frozen parameters keep their values during training (for fine-tuning).</summary>
    public bool Trainable { get; set; } = true;

    /// <summary>Releases value and gradient (the network's Dispose); the parameter is unallocated afterwards.</summary>
    internal void Release()
    {
        _value?.Dispose();
        _gradient?.Dispose();
        _value = _gradient = null;
    }

    /// <summary>Allocates value and gradient on <paramref name="backend"/>; values start from the initializer, else zero.</summary>
    internal void Allocate(IBackend backend, Rng rng)
    {
        _value = backend.Allocate(Shape);
        _gradient = backend.Allocate(Shape);
        if (initializer is null) return;
        var values = new float[Shape.Length];
        initializer(values, rng);
        _value.CopyFrom(values);
    }
}
