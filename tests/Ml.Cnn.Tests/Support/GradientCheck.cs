using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Layers;
using Ml.Cnn.Losses;
using Ml.Cnn.Tensors;
using Xunit;

namespace Ml.Cnn.Tests.Support;

/// <summary>
/// Central finite differences of L = Σ r ⊙ layer(x) against the analytic backward pass, for the input and every
/// parameter. Inputs come from the caller so layers with kinks can use values spaced away from them.
/// </summary>
public static class GradientCheck
{
    private const double Epsilon = 5e-3, RelativeTolerance = 1e-2, AbsoluteTolerance = 1e-3;

    public static void Layer(IBackend backend, Layer layer, int[] inputShape, bool training = true, bool spaced = false,
        Action? beforeForward = null)
    {
        var rng = new Rng(42);
        var shape = new TensorShape(inputShape);
        layer.Build(backend, shape.DropBatch(), rng);
        // Non-trivial parameter values (batch-norm γ would otherwise start at exactly 1).
        foreach (var p in layer.Parameters) p.Value.CopyFrom(Numerics.RandomNormal(rng, p.Value.Length, 0.5));
        var xValues = spaced ? Numerics.Spaced(rng, shape.Length, 0.05f) : Numerics.RandomNormal(rng, shape.Length);
        var x = Numerics.TensorOf(backend, xValues, inputShape);

        beforeForward?.Invoke();
        var y = layer.Forward(x, training);
        var projection = Numerics.RandomNormal(rng, y.Length);
        var r = Numerics.TensorOf(backend, projection, y.Shape.Dims.ToArray());
        var dx = layer.Backward(r)!.ToArray();
        var parameterGradients = layer.Parameters.Select(p => p.Gradient.ToArray()).ToArray();

        double Objective()
        {
            beforeForward?.Invoke();
            var output = layer.Forward(x, training).ToArray();
            double sum = 0;
            for (int i = 0; i < output.Length; i++) sum += (double)output[i] * projection[i];
            return sum;
        }

        CheckTensor(x, dx, Objective, $"{layer.GetType().Name} input");
        for (int p = 0; p < layer.Parameters.Count; p++)
            CheckTensor(layer.Parameters[p].Value, parameterGradients[p], Objective, $"{layer.GetType().Name} {layer.Parameters[p].Name}");
    }

    public static void Loss(IBackend backend, Loss loss, Tensor output, Tensor target)
    {
        var gradient = backend.Allocate(output.Shape);
        loss.Compute(output, target, gradient);
        var analytic = gradient.ToArray();
        var scratch = backend.Allocate(output.Shape);
        CheckTensor(output, analytic, () => loss.Compute(output, target, scratch), loss.GetType().Name);
    }

    private static void CheckTensor(Tensor t, float[] analytic, Func<double> objective, string what)
    {
        var values = t.ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            float original = values[i];
            values[i] = (float)(original + Epsilon); t.CopyFrom(values);
            double plus = objective();
            values[i] = (float)(original - Epsilon); t.CopyFrom(values);
            double minus = objective();
            values[i] = original; t.CopyFrom(values);
            double numeric = (plus - minus) / (2 * Epsilon);
            double tolerance = AbsoluteTolerance + RelativeTolerance * Math.Abs(numeric);
            Assert.True(Math.Abs(numeric - analytic[i]) <= tolerance,
                $"{what}[{i}]: analytic {analytic[i]}, finite difference {numeric}.");
        }
    }
}
