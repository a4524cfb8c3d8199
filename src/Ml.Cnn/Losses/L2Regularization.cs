using Ml.Cnn.Layers;

namespace Ml.Cnn.Losses;

/// <summary>The L2 penalty λ/2·Σ‖W‖² of the lectures, over the parameters that decay (weights, not biases).</summary>
public static class L2Regularization
{
    /// <summary>Adds λ·W to each decaying parameter's gradient and returns the penalty to add to the loss.</summary>
    public static float Apply(IEnumerable<Parameter> parameters, float lambda)
    {
        if (!(lambda >= 0)) throw new ArgumentOutOfRangeException(nameof(lambda), lambda, "The L2 strength must be non-negative.");
        double penalty = 0;
        foreach (var p in parameters.Where(p => p.Decays && p.Trainable))
        {
            penalty += p.Value.Backend.SumOfSquares(p.Value);
            p.Value.Backend.Axpy(lambda, p.Value, p.Gradient);
        }
        return (float)(0.5 * lambda * penalty);
    }
}
