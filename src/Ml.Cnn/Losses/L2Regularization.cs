using Ml.Cnn.Layers;

namespace Ml.Cnn.Losses;

/// <summary>The L2 penalty λ/2·Σ‖W‖² of the lectures, over the parameters that decay (weights, not biases).</summary>
public static class L2Regularization
{
    /// <summary>Adds λ·W to each decaying parameter's gradient and returns the penalty to add to the loss.</summary>
    public static float Apply(IEnumerable<Parameter> parameters, float lambda)
    {
        if (!(lambda >= 0)) throw new ArgumentOutOfRangeException(nameof(lambda), lambda, "The L2 strength must be non-negative.");
        var decaying = parameters.Where(p => p.Decays && p.Trainable).ToArray();
        if (decaying.Length == 0) return 0;
        // One norm over every weight: a device backend reads it back once.
        double penalty = decaying[0].Value.Backend.SumOfSquares(decaying.Select(p => p.Value).ToArray());
        foreach (var p in decaying) p.Value.Backend.Axpy(lambda, p.Value, p.Gradient);
        return (float)(0.5 * lambda * penalty);
    }
}
