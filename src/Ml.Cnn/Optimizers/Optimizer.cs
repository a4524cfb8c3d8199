using Ml.Cnn.Layers;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Optimizers;

/// <summary>
/// Updates trainable parameters from their gradients, with PyTorch's update rules. Weight decay applies to the
/// parameters marked <see cref="Parameter.Decays"/> (weights), not to biases and normalization scales.
/// </summary>
public abstract class Optimizer : IDisposable
{
    private readonly Dictionary<Parameter, Tensor[]> _state = [];

    /// <summary>Creates an optimizer over the given parameters.</summary>
    protected Optimizer(IEnumerable<Parameter> parameters, float learningRate, float weightDecay)
    {
        Parameters = parameters.ToArray();
        if (!(learningRate > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "The learning rate must be positive.");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "Weight decay must be non-negative.");
        LearningRate = learningRate;
        WeightDecay = weightDecay;
    }

    /// <summary>The parameters updated by <see cref="Step"/>.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Current learning rate (schedules change it between steps).</summary>
    public float LearningRate { get; set; }

    /// <summary>Weight decay coefficient.</summary>
    public float WeightDecay { get; }

    /// <summary>Number of steps taken.</summary>
    public int StepCount { get; internal set; }

    /// <summary>How many state tensors (momentum, moments) each parameter needs.</summary>
    protected abstract int StateTensorsPerParameter { get; }

    /// <summary>Applies one update to every trainable parameter.</summary>
    public void Step()
    {
        StepCount++;
        foreach (var p in Parameters)
        {
            if (!p.Trainable) continue;
            Update(p, State(p), p.Decays ? WeightDecay : 0, StepCount);
        }
    }

    /// <summary>The per-parameter state tensors, allocated (zeroed) on first use; exposed for checkpoints.</summary>
    public Tensor[] State(Parameter p)
    {
        if (!_state.TryGetValue(p, out var tensors))
        {
            tensors = Enumerable.Range(0, StateTensorsPerParameter).Select(_ => p.Value.Backend.Allocate(p.Value.Shape)).ToArray();
            _state[p] = tensors;
        }
        return tensors;
    }

    /// <summary>Releases the state tensors (device memory on a GPU backend); the next step starts from zeroed state.</summary>
    public void Dispose()
    {
        foreach (var tensors in _state.Values)
            foreach (var t in tensors) t.Dispose();
        _state.Clear();
    }

    /// <summary>Updates one parameter.</summary>
    protected abstract void Update(Parameter p, Tensor[] state, float weightDecay, int step);
}

/// <summary>SGD with optional momentum and Nesterov momentum (PyTorch's SGD with dampening 0).</summary>
public sealed class Sgd(IEnumerable<Parameter> parameters, float learningRate, float momentum = 0f, bool nesterov = false, float weightDecay = 0f)
    : Optimizer(parameters, learningRate, weightDecay)
{
    /// <summary>Momentum coefficient.</summary>
    public float Momentum { get; } = momentum >= 0 && momentum < 1 ? momentum
        : throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "Momentum must be in [0, 1).");

    /// <summary>Whether the Nesterov form is used.</summary>
    public bool Nesterov { get; } = !nesterov || momentum > 0 ? nesterov
        : throw new ArgumentException("Nesterov momentum needs a positive momentum.", nameof(nesterov));

    /// <inheritdoc />
    protected override int StateTensorsPerParameter => 1;

    /// <inheritdoc />
    protected override void Update(Parameter p, Tensor[] state, float weightDecay, int step) =>
        p.Value.Backend.SgdUpdate(p.Value, p.Gradient, state[0], LearningRate, Momentum, weightDecay, Nesterov);
}

/// <summary>Adam, with L2 weight decay added to the gradient (PyTorch's Adam).</summary>
public class Adam(IEnumerable<Parameter> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
    float epsilon = 1e-8f, float weightDecay = 0f) : Optimizer(parameters, learningRate, weightDecay)
{
    /// <summary>First-moment decay.</summary>
    public float Beta1 { get; } = beta1;
    /// <summary>Second-moment decay.</summary>
    public float Beta2 { get; } = beta2;
    /// <summary>Denominator stabilizer.</summary>
    public float Epsilon { get; } = epsilon;

    /// <summary>Whether decay is applied to the weights directly (AdamW) rather than through the gradient.</summary>
    protected virtual bool DecoupledWeightDecay => false;

    /// <inheritdoc />
    protected override int StateTensorsPerParameter => 2;

    /// <inheritdoc />
    protected override void Update(Parameter p, Tensor[] state, float weightDecay, int step) =>
        p.Value.Backend.AdamUpdate(p.Value, p.Gradient, state[0], state[1], LearningRate, Beta1, Beta2, Epsilon, weightDecay, DecoupledWeightDecay, step);
}

/// <summary>AdamW: Adam with decoupled weight decay (PyTorch's AdamW; default decay 0.01).</summary>
public sealed class AdamW(IEnumerable<Parameter> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
    float epsilon = 1e-8f, float weightDecay = 0.01f) : Adam(parameters, learningRate, beta1, beta2, epsilon, weightDecay)
{
    /// <inheritdoc />
    protected override bool DecoupledWeightDecay => true;
}
