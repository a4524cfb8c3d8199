namespace Ml.Cnn.Core;

/// <summary>How a layer's weights are drawn (biases start at zero).</summary>
public enum WeightInit
{
    /// <summary>He/Kaiming normal: N(0, 2 / fan_in), for ReLU networks.</summary>
    HeNormal,
    /// <summary>He/Kaiming uniform: U(±√(6 / fan_in)).</summary>
    HeUniform,
    /// <summary>Xavier/Glorot normal: N(0, 2 / (fan_in + fan_out)), for tanh and sigmoid networks.</summary>
    XavierNormal,
    /// <summary>Xavier/Glorot uniform: U(±√(6 / (fan_in + fan_out))).</summary>
    XavierUniform,
}

/// <summary>Draws initial weights.</summary>
public static class WeightInitializer
{
    /// <summary>Fills <paramref name="weights"/> for a layer with the given fan-in and fan-out.</summary>
    public static void Fill(Span<float> weights, WeightInit scheme, int fanIn, int fanOut, Rng rng)
    {
        switch (scheme)
        {
            case WeightInit.HeNormal: Normal(weights, Math.Sqrt(2.0 / fanIn), rng); break;
            case WeightInit.HeUniform: Uniform(weights, Math.Sqrt(6.0 / fanIn), rng); break;
            case WeightInit.XavierNormal: Normal(weights, Math.Sqrt(2.0 / (fanIn + fanOut)), rng); break;
            case WeightInit.XavierUniform: Uniform(weights, Math.Sqrt(6.0 / (fanIn + fanOut)), rng); break;
            default: throw new ArgumentOutOfRangeException(nameof(scheme), scheme, null);
        }
    }

    private static void Normal(Span<float> weights, double std, Rng rng)
    {
        for (int i = 0; i < weights.Length; i++) weights[i] = (float)(rng.NextGaussian() * std);
    }

    private static void Uniform(Span<float> weights, double bound, Rng rng)
    {
        for (int i = 0; i < weights.Length; i++) weights[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
    }
}
