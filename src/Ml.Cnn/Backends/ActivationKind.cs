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
}
