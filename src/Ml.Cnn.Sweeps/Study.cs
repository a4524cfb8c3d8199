namespace Ml.Cnn.Sweeps;

/// <summary>
/// A persistent study, Optuna's ask/tell shape: <see cref="Ask"/> leases the next trial, the trial reports
/// intermediate values and is told its result. Every process that opens the same study in the same storage (with the
/// same space, direction, sampler and pruner) works on it; finished trials are kept across runs.
/// </summary>
public sealed class Study
{
    /// <summary>The study's name in its storage.</summary>
    public string Name { get; }

    /// <summary>Its hyperparameters.</summary>
    public SearchSpace Space { get; }

    /// <summary>Whether larger objectives win.</summary>
    public StudyDirection Direction { get; }

    /// <summary>Proposes parameters.</summary>
    public ISampler Sampler { get; }

    /// <summary>Stops trials that cannot win.</summary>
    public IPruner Pruner { get; }

    /// <summary>Where it lives.</summary>
    public StudyStorage Storage { get; }

    private Study(StudyStorage storage, string name, SearchSpace space, StudyDirection direction, ISampler sampler, IPruner pruner) =>
        (Storage, Name, Space, Direction, Sampler, Pruner) = (storage, name, space, direction, sampler, pruner);

    /// <summary>
    /// Opens the study <paramref name="name"/>, creating it if absent. <paramref name="trials"/> sets how many trials
    /// it runs in all (default: a grid's size; required otherwise); a study that exists keeps its budget unless one is
    /// given. Throws <see cref="InvalidOperationException"/> naming what differs when the stored study was created
    /// with another space, direction, sampler or pruner.
    /// </summary>
    public static Study Open(StudyStorage storage, string name, SearchSpace space, StudyDirection direction, ISampler sampler,
        IPruner? pruner = null, int? trials = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (space.Count == 0) throw new ArgumentException("The search space has no parameters.", nameof(space));
        pruner ??= new NoPruner();
        int? size = sampler.Size(space);
        if (trials is <= 0) throw new ArgumentOutOfRangeException(nameof(trials), trials, "A study needs at least one trial.");
        if (trials is { } t && size is { } s && t > s)
            throw new ArgumentOutOfRangeException(nameof(trials), t, $"The {sampler.Description} sampler has only {s} distinct trials.");
        storage.EnsureSchema();
        var wanted = new StudyRow(name, direction, space.Describe(), sampler.Description, pruner.Description, trials ?? size ?? 0);
        var stored = storage.ReadStudy(name);
        if (stored is null)
        {
            if (wanted.Trials == 0) throw new ArgumentException($"Study '{name}' is new: say how many trials it runs (the {sampler.Description} sampler has no end).", nameof(trials));
            storage.CreateStudy(wanted, setBudget: false);
            stored = storage.ReadStudy(name)!;
        }
        foreach (var (what, have, want) in new[]
        {
            ("direction", stored.Direction.ToString(), direction.ToString()), ("search space", stored.Space, wanted.Space),
            ("sampler", stored.Sampler, wanted.Sampler), ("pruner", stored.Pruner, wanted.Pruner),
        })
            if (have != want)
                throw new InvalidOperationException($"Study '{name}' in {storage} was created with the {what} \"{have}\"; this run has \"{want}\". " +
                    "Use another study name, or delete the study to start over.");
        if (trials is { } budget && budget != stored.Trials) storage.CreateStudy(wanted, setBudget: true);
        return new Study(storage, name, space, direction, sampler, pruner);
    }

    /// <summary>
    /// Leases the next trial to <paramref name="worker"/> for <paramref name="lease"/> (moved on by
    /// <see cref="Trial.Heartbeat"/>): a trial whose worker's lease ran out, else a new one. Null when none is free now
    /// (<see cref="IsFinished"/> tells whether any remain).
    /// </summary>
    public Trial? Ask(string worker, TimeSpan lease)
    {
        var leased = Storage.Lease(Name, worker, lease, number => Sampler.Sample(Space, number, View()).ToJson());
        return leased is { } l ? new Trial(this, l.Number, Space.ReadJson(l.Parameters), worker, lease) : null;
    }

    /// <summary>Every trial so far, in number order.</summary>
    public IReadOnlyList<TrialRecord> Trials() => Storage.Trials(Name, Space);

    /// <summary>The trials as samplers and pruners see them.</summary>
    public StudyView View() => new(Direction, Trials());

    /// <summary>True when the budget is spent and no trial is running.</summary>
    public bool IsFinished()
    {
        var trials = Trials();
        return trials.Count >= Storage.ReadStudy(Name)!.Trials && trials.All(t => t.State != TrialState.Running);
    }

    /// <summary>The best complete trial, or null when none has completed.</summary>
    public TrialRecord? Best()
    {
        var view = View();
        TrialRecord? best = null;
        foreach (var t in view.Trials)
            if (t.State == TrialState.Complete && t.Value is { } v && (best is null || view.Better(v, best.Value!.Value))) best = t;
        return best;
    }
}

/// <summary>A trial leased to one worker. Only the lease holder's reports and result are written.</summary>
public sealed class Trial
{
    private readonly Study _study;
    private readonly TimeSpan _lease;

    /// <summary>0-based trial number.</summary>
    public int Number { get; }

    /// <summary>Its hyperparameters.</summary>
    public Parameters Parameters { get; }

    /// <summary>Who holds it.</summary>
    public string Worker { get; }

    internal Trial(Study study, int number, Parameters parameters, string worker, TimeSpan lease) =>
        (_study, Number, Parameters, Worker, _lease) = (study, number, parameters, worker, lease);

    /// <summary>Keeps the lease; false if another worker has taken the trial (this one's result would not count).</summary>
    public bool Heartbeat() => _study.Storage.Heartbeat(_study.Name, Number, Worker, _lease);

    /// <summary>
    /// Records the value after <paramref name="step"/> (an epoch, or folds so far) and returns whether the pruner
    /// says to stop. Throws <see cref="TrialLeaseLostException"/> if another worker has taken the trial.
    /// </summary>
    public bool Report(int step, double value)
    {
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "Steps count from 1.");
        if (!_study.Storage.Report(_study.Name, Number, Worker, step, value)) throw new TrialLeaseLostException(_study.Name, Number);
        var view = _study.View();
        return _study.Pruner.ShouldPrune(view, view.Trials.First(t => t.Number == Number), step);
    }

    /// <summary>Ends the trial; false if the lease was lost, so nothing was written.</summary>
    public bool Tell(TrialState state, double? value, double? std = null, double seconds = 0, string? message = null)
    {
        if (state == TrialState.Running) throw new ArgumentException("A trial is told how it ended, not that it runs.", nameof(state));
        return _study.Storage.Finish(_study.Name, Number, Worker, state, value, std, seconds, message);
    }
}

/// <summary>Another worker took the trial after this one's lease ran out; this worker's result is not counted.</summary>
public sealed class TrialLeaseLostException(string study, int number)
    : Exception($"Trial {number} of study '{study}' was taken by another worker after this worker's lease ran out.");
