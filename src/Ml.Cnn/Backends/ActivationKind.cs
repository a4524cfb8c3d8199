namespace Ml.Cnn.Backends;

/// <summary>Pointwise nonlinearities.</summary>
public enum ActivationKind
{
    /// <summary>max(0, x).</summary>
    Relu,
    /// <summary>x for x &gt; 0, αx otherwise.</summary>
    LeakyRelu,
    /// <summary>x for x &gt; 0, α(eˣ − 1) otherwise.</summary>
    Elu,
    /// <summary>1 / (1 + e⁻ˣ).</summary>
    Sigmoid,
    /// <summary>tanh(x).</summary>
    Tanh,
    /// <summary>min(max(x, α), β): ReLU6 is Clip(0, 6) (PyTorch's hardtanh).</summary>
    Clip,
    /// <summary>max(0, min(1, αx + β)) (PyTorch's hardsigmoid is α = 1/6, β = 1/2).</summary>
    HardSigmoid,
    /// <summary>x · max(0, min(1, x / 6 + 1/2)) (MobileNetV3).</summary>
    HardSwish,
    /// <summary>x · σ(x), also called swish (EfficientNet).</summary>
    Silu,
    /// <summary>x · Φ(x), Φ the standard normal CDF (ConvNeXt, transformers; PyTorch's exact form).</summary>
    Gelu,
}

/// <summary>How <see cref="IBackend.UpsampleForward"/> interpolates.</summary>
public enum UpsampleMode
{
    /// <summary>Each output pixel copies its nearest source pixel (PyTorch's <c>mode='nearest'</c>).</summary>
    Nearest,
    /// <summary>Bilinear interpolation with align_corners = false (PyTorch's and ONNX Resize's half-pixel rule).</summary>
    Bilinear,
}
