using System.Data.Common;
using System.Diagnostics;
using Microsoft.ML;
using Ml.Cnn.MLNet;
using Ml.Cnn.Training;

namespace Ml.Cnn.Sweeps;

/// <summary>The objective of a sweep: one of ML.NET's evaluator metrics (the direction follows from it).</summary>
public enum SweepMetric
{
    /// <summary>Multiclass micro-accuracy (maximized); CNN trials report it per epoch.</summary>
    MicroAccuracy,

    /// <summary>Multiclass macro-accuracy (maximized).</summary>
    MacroAccuracy,

    /// <summary>Multiclass log-loss (minimized); CNN trials report their validation cross-entropy per epoch.</summary>
    LogLoss,

    /// <summary>Regression R² (maximized).</summary>
    RSquared,

    /// <summary>Regression mean absolute error (minimized).</summary>
    MeanAbsoluteError,

    /// <summary>Regression root mean squared error (minimized).</summary>
    RootMeanSquaredError,
}

/// <summary>Options of <see cref="SweepCatalog.Sweep"/>. Every option has a working default but the search space.</summary>
public sealed class SweepOptions
{
    /// <summary>The study's name: runs and workers with the same name and storage share its trials.</summary>
    public string StudyName { get; set; } = "sweep";

    /// <summary>Where the study lives (null: the SQLite file <c>sweeps.db</c> in the current folder).</summary>
    public StudyStorage? Storage { get; set; }

    /// <summary>The hyperparameters and their ranges.</summary>
    public SearchSpace SearchSpace { get; set; } = new();

    /// <summary>Proposes each trial's parameters.</summary>
    public ISampler Sampler { get; set; } = new TpeSampler();

    /// <summary>Stops trials that cannot win, on epochs (with a validation set) or folds (with cross-validation).</summary>
    public IPruner Pruner { get; set; } = new NoPruner();

    /// <summary>Trials the study runs in all (null: a grid's size, or the stored study's budget).</summary>
    public int? Trials { get; set; }

    /// <summary>What the sweep optimizes.</summary>
    public SweepMetric Metric { get; set; } = SweepMetric.MicroAccuracy;

    /// <summary>The label column the evaluator reads (a key for classification, Single for regression).</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>
    /// Cross-validation folds (0: train on the training data, judge on the validation set). Every trial uses the
    /// same folds, drawn from <see cref="Seed"/>; a trial reports after each fold.
    /// </summary>
    public int Folds { get; set; }

    /// <summary>Seed of the folds and of every trial's trainer (<see cref="TrialContext.Seed"/>): all trials start alike.</summary>
    public int Seed { get; set; } = 1;

    /// <summary>Trials run at once in this process.</summary>
    public int ParallelTrials { get; set; } = 1;

    /// <summary>CPU threads per trial (0: the cores shared out among the parallel trials).</summary>
    public int ThreadsPerTrial { get; set; }

    /// <summary>Fail a trial that runs longer than this (null: no limit).</summary>
    public TimeSpan? TrialTimeLimit { get; set; }

    /// <summary>
    /// Fail a trial when the process's working set grows by more than this many bytes over its level when the trial
    /// began (0: no limit). Exact for one trial at a time (as workers run); with parallel trials they share it.
    /// </summary>
    public long TrialMemoryLimit { get; set; }

    /// <summary>How long a trial stays leased without a heartbeat before another worker may take it (heartbeats come at a third of it).</summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Refit the best parameters on the training data when the study is finished (workers set false).</summary>
    public bool RefitBest { get; set; } = true;

    /// <summary>Receives each trial this process finishes.</summary>
    public IProgress<TrialRecord>? Progress { get; set; }

    /// <summary>Stops the sweep: the running trials are left to be taken again, as if the process had been killed.</summary>
    public CancellationToken Cancellation { get; set; }

    internal StudyDirection Direction => Metric is SweepMetric.LogLoss or SweepMetric.MeanAbsoluteError or SweepMetric.RootMeanSquaredError
        ? StudyDirection.Minimize : StudyDirection.Maximize;

    internal bool IsRegression => Metric is SweepMetric.RSquared or SweepMetric.MeanAbsoluteError or SweepMetric.RootMeanSquaredError;

    internal int Threads => ThreadsPerTrial > 0 ? ThreadsPerTrial : Math.Max(1, Environment.ProcessorCount / ParallelTrials);

    internal void Validate(bool hasValidation)
    {
        ArgumentNullException.ThrowIfNull(SearchSpace, nameof(SearchSpace));
        ArgumentNullException.ThrowIfNull(Sampler, nameof(Sampler));
        ArgumentNullException.ThrowIfNull(Pruner, nameof(Pruner));
        ArgumentException.ThrowIfNullOrWhiteSpace(StudyName, nameof(StudyName));
        void Require(bool condition, string option, object value, string rule)
        {
            if (!condition) throw new ArgumentOutOfRangeException(option, value, $"{option} {rule}; it is {value}.");
        }
        Require(Enum.IsDefined(Metric), nameof(Metric), Metric, "is not a metric");
        Require(Folds == 0 || Folds >= 2, nameof(Folds), Folds, "must be 0 (a validation set) or at least 2");
        Require(Folds > 0 || hasValidation, nameof(Folds), Folds, "must be at least 2 when no validation set is given");
        Require(Folds == 0 || !hasValidation, nameof(Folds), Folds, "must be 0 when a validation set is given");
        Require(ParallelTrials >= 1, nameof(ParallelTrials), ParallelTrials, "must be at least 1");
        Require(ThreadsPerTrial >= 0, nameof(ThreadsPerTrial), ThreadsPerTrial, "must not be negative");
        if (ThreadsPerTrial == 0)
            Require(ParallelTrials <= Environment.ProcessorCount, nameof(ParallelTrials), ParallelTrials,
                $"must not exceed the {Environment.ProcessorCount} cores (a trial needs one)");
        else
            Require(ParallelTrials * ThreadsPerTrial <= Environment.ProcessorCount, nameof(ThreadsPerTrial), ThreadsPerTrial,
                $"times ParallelTrials ({ParallelTrials}) must not exceed the {Environment.ProcessorCount} cores");
        Require(TrialTimeLimit is null || TrialTimeLimit > TimeSpan.Zero, nameof(TrialTimeLimit), TrialTimeLimit!, "must be positive");
        Require(TrialMemoryLimit >= 0, nameof(TrialMemoryLimit), TrialMemoryLimit, "must not be negative");
        Require(Lease >= TimeSpan.FromSeconds(1), nameof(Lease), Lease, "must be at least a second");
    }
}

/// <summary>
/// What the pipeline factory gets for one trial: the parameters, the trial's own MLContext, its thread count, seed
/// and cancellation. <see cref="Attach(CnnTrainerOptions)"/> wires a CNN trainer's options to the trial, so it
/// reports each epoch to the pruner and stops when pruned or out of time.
/// </summary>
public sealed class TrialContext
{
    private readonly Action<int, double>? _reportEpoch;
    private readonly IDataView? _validation;
    private readonly SweepMetric _metric;

    /// <summary>The trial's hyperparameters.</summary>
    public Parameters Parameters { get; }

    /// <summary>The trial number (-1 for the refit of the best).</summary>
    public int Number { get; }

    /// <summary>This trial's MLContext (trials run in parallel; an MLContext is not shared between threads).</summary>
    public MLContext ML { get; }

    /// <summary>CPU threads the trial may use.</summary>
    public int Threads { get; }

    /// <summary>The sweep's seed, the same for every trial.</summary>
    public int Seed { get; }

    /// <summary>Cancelled when the trial is pruned, runs out of time or memory, loses its lease or the sweep stops.</summary>
    public CancellationToken Cancellation { get; }

    internal TrialContext(Parameters parameters, int number, int threads, int seed, CancellationToken cancellation,
        IDataView? validation, SweepMetric metric, Action<int, double>? reportEpoch)
    {
        (Parameters, Number, Threads, Seed, Cancellation) = (parameters, number, threads, seed, cancellation);
        (_validation, _metric, _reportEpoch) = (validation, metric, reportEpoch);
        ML = new MLContext(seed);
    }

    /// <summary>
    /// Sets a CNN trainer's threads, seed (unless set), cancellation and, when the sweep judges on a validation set,
    /// that set (unless set; the sweep's data must then be in the trainer's input schema, as for CrossValidate) and a
    /// progress that reports each epoch's validation accuracy or loss to the pruner. Returns <paramref name="options"/>.
    /// </summary>
    public CnnTrainerOptions Attach(CnnTrainerOptions options)
    {
        options.Threads = Threads;
        options.Seed ??= (ulong)Seed;
        options.Cancellation = Cancellation;
        if (_validation is null) return options;
        options.ValidationSet ??= _validation;
        if (_reportEpoch is { } report && _metric is SweepMetric.MicroAccuracy or SweepMetric.LogLoss)
            options.Progress = new EpochReporter(report, _metric == SweepMetric.LogLoss, options.Progress);
        return options;
    }

    /// <summary>Sets a KNN trainer's threads and seed. Returns <paramref name="options"/>.</summary>
    public KnnOptions Attach(KnnOptions options)
    {
        options.Threads = Threads;
        options.Seed = Seed;
        return options;
    }

    private sealed class EpochReporter(Action<int, double> report, bool loss, IProgress<TrainingProgress>? inner) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            inner?.Report(p);
            double value = loss ? p.ValidationLoss : p.ValidationAccuracy;
            if (p.EpochEnd && double.IsFinite(value)) report(p.Epoch, value);
        }
    }
}

/// <summary>The sweep entry point on <see cref="MLContext"/>.</summary>
public static class SweepCatalog
{
    /// <summary>
    /// Runs the study <see cref="SweepOptions.StudyName"/> until its trial budget is spent: each trial builds a
    /// pipeline with <paramref name="pipeline"/>, fits it on <paramref name="train"/> and is judged by
    /// <see cref="SweepOptions.Metric"/> on <paramref name="validation"/> (or by cross-validation on
    /// <paramref name="train"/>). Trials finished earlier — by this process before it was killed, or by other
    /// workers on the same storage — are kept; an interrupted one is run again. Failed and diverged trials are
    /// recorded and the sweep goes on. Returns the leaderboard and, with <see cref="SweepOptions.RefitBest"/>, the best
    /// pipeline fitted on <paramref name="train"/>.
    /// </summary>
    public static SweepResult Sweep(this MLContext ml, Func<TrialContext, IEstimator<ITransformer>> pipeline, IDataView train,
        SweepOptions options, IDataView? validation = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(train);
        options.Validate(validation is not null);
        var storage = options.Storage ?? StudyStorage.Sqlite("sweeps.db");
        var study = Study.Open(storage, options.StudyName, options.SearchSpace, options.Direction, options.Sampler, options.Pruner, options.Trials);
        var runner = new TrialRunner(ml, study, pipeline, train, validation, options);
        var workers = Enumerable.Range(0, options.ParallelTrials)
            .Select(i => Task.Factory.StartNew(() => runner.Work(WorkerName(i)), TaskCreationOptions.LongRunning)).ToArray();
        try { Task.WaitAll(workers); }
        catch (AggregateException e) { throw e.InnerExceptions.Count == 1 ? e.InnerExceptions[0] : e; }
        options.Cancellation.ThrowIfCancellationRequested();
        var best = study.Best();
        ITransformer? model = options.RefitBest && best is not null ? runner.Refit(best.Parameters) : null;
        return new SweepResult(study, options.Metric, model);
    }

    /// <summary>Host, process and slot, made unique by a random suffix (process ids repeat across containers).</summary>
    private static string WorkerName(int slot) => $"{Environment.MachineName}:{Environment.ProcessId}:{slot}:{Guid.NewGuid().ToString("N")[..8]}";
}

/// <summary>Runs trials of one study: lease, fit, judge, report, tell.</summary>
internal sealed class TrialRunner(MLContext ml, Study study, Func<TrialContext, IEstimator<ITransformer>> pipeline, IDataView train,
    IDataView? validation, SweepOptions options)
{
    private readonly IReadOnlyList<DataOperationsCatalog.TrainTestData> _folds =
        options.Folds > 0 ? ml.Data.CrossValidationSplit(train, options.Folds, seed: options.Seed) : [];

    /// <summary>Takes and runs trials until the study is finished or the sweep is cancelled.</summary>
    public void Work(string worker)
    {
        var poll = TimeSpan.FromMilliseconds(Math.Min(1000, options.Lease.TotalMilliseconds / 4));
        while (!options.Cancellation.IsCancellationRequested)
        {
            var trial = Retry(() => study.Ask(worker, options.Lease));
            if (trial is not null) { Run(trial); continue; }
            if (Retry(study.IsFinished)) return;
            // Another worker's trial is running: wait, in case that worker dies and its trial comes back.
            options.Cancellation.WaitHandle.WaitOne(poll);
        }
    }

    /// <summary>
    /// Storage calls, tried again over about 15 s when the database is briefly unreachable or locked (a restarted
    /// server, a SQLite writer holding its lock) rather than ending the worker at the first hiccup.
    /// </summary>
    private T Retry<T>(Func<T> call)
    {
        for (int attempt = 0; ; attempt++)
        {
            try { return call(); }
            catch (DbException) when (attempt < 4 && !options.Cancellation.IsCancellationRequested)
            {
                options.Cancellation.WaitHandle.WaitOne(TimeSpan.FromSeconds(1 << attempt));
            }
        }
    }

    private void Run(Trial trial)
    {
        using var stop = new TrialStop(options.Cancellation);
        using var heartbeat = new Timer(_ =>
        {
            try { if (!trial.Heartbeat()) stop.Stop(TrialState.Failed, "lease lost", abandon: true); }
            catch (DbException) { /* a storage hiccup: the next beat tries again before the lease runs out */ }
        }, null, options.Lease / 3, options.Lease / 3);
        using var timeout = options.TrialTimeLimit is { } t
            ? new Timer(_ => stop.Stop(TrialState.Failed, $"ran past the time limit of {t.TotalSeconds:0.#} s"), null, t, Timeout.InfiniteTimeSpan)
            : null;
        long baseline = Environment.WorkingSet;
        using var memory = options.TrialMemoryLimit > 0 ? new Timer(_ =>
        {
            long grown = Environment.WorkingSet - baseline;
            if (grown > options.TrialMemoryLimit)
                stop.Stop(TrialState.Failed, $"grew the working set by {grown >> 20} MiB, over the limit of {options.TrialMemoryLimit >> 20} MiB");
        }, null, 0, 100) : null;

        var clock = Stopwatch.StartNew();
        double? lastReported = null;
        void Report(int step, double value)
        {
            lastReported = value;
            bool prune;
            try { prune = trial.Report(step, value); }
            catch (DbException e)
            {
                // Not the trial's fault: leave it to be taken again rather than record it as failed.
                stop.Stop(TrialState.Failed, $"storage: {e.Message}", abandon: true);
                return;
            }
            catch (TrialLeaseLostException) { stop.Stop(TrialState.Failed, "lease lost", abandon: true); return; }
            if (prune) stop.Stop(TrialState.Pruned, $"pruned after step {step}");
        }
        TrialState state;
        double? value = null, std = null;
        string? message = null;
        try
        {
            (value, std) = Evaluate(trial, stop.Token, Report);
            state = double.IsFinite(value!.Value) ? TrialState.Complete : TrialState.Failed;
            if (state == TrialState.Failed) (message, value) = ($"the objective is {value}", null);
            // A fit that ignores the cancellation may return after its time or memory ran out: that still fails it.
            // One pruned at its last step has finished and stays complete.
            if (stop.Stopped() is { State: TrialState.Failed } limit) (state, message, value, std) = (TrialState.Failed, limit.Reason, null, null);
        }
        catch (Exception) when (stop.Stopped() is not null) // however the fit ended once stopped, the stop is why
        {
            var stopped = stop.Stopped()!.Value;
            (state, message) = (stopped.State, stopped.Reason);
            if (state == TrialState.Pruned) value = lastReported;
        }
        catch (Exception e)
        {
            state = TrialState.Failed;
            var inner = e is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerExceptions[0] : e;
            message = inner is TrainingDivergedException ? $"diverged: {inner.Message}" : $"{inner.GetType().Name}: {inner.Message}";
        }
        stop.End();
        // Cancelled sweep, lost lease, storage trouble: the trial goes back to the queue, as after a kill.
        if (options.Cancellation.IsCancellationRequested || stop.Abandoned) return;
        if (Retry(() => trial.Tell(state, value, std, clock.Elapsed.TotalSeconds, message)))
            options.Progress?.Report(Retry(study.Trials).First(r => r.Number == trial.Number));
    }

    /// <summary>
    /// Why a trial is being stopped, from whichever thread decides it (timers, the pruner, the heartbeat): the first
    /// reason wins, and once the trial has ended nothing more is cancelled (timer callbacks can outlive their timers).
    /// </summary>
    private sealed class TrialStop(CancellationToken sweep) : IDisposable
    {
        private readonly object _gate = new();
        private readonly CancellationTokenSource _source = CancellationTokenSource.CreateLinkedTokenSource(sweep);
        private (TrialState State, string Reason)? _stopped;
        private bool _ended;

        public CancellationToken Token => _source.Token;

        /// <summary>Whether the attempt is given up without a result (the lease is gone or storage failed).</summary>
        public bool Abandoned { get; private set; }

        public void Stop(TrialState state, string reason, bool abandon = false)
        {
            lock (_gate)
            {
                if (_ended) return;
                _stopped ??= (state, reason);
                Abandoned |= abandon;
                _source.Cancel();
            }
        }

        public (TrialState State, string Reason)? Stopped()
        {
            lock (_gate) return _stopped;
        }

        public void End()
        {
            lock (_gate) _ended = true;
        }

        public void Dispose()
        {
            End();
            _source.Dispose();
        }
    }

    /// <summary>The trial's objective, and its spread over folds.</summary>
    private (double Value, double? Std) Evaluate(Trial trial, CancellationToken cancellation, Action<int, double> report)
    {
        if (_folds.Count == 0)
        {
            var context = new TrialContext(trial.Parameters, trial.Number, options.Threads, options.Seed, cancellation, validation, options.Metric,
                report);
            // A fit that returns ran to its end: a prune decision at its last epoch has nothing left to save.
            var model = pipeline(context).Fit(train);
            return (Score(context.ML, model.Transform(validation!)), null);
        }
        var scores = new List<double>();
        foreach (var fold in _folds)
        {
            // Pruned after the last fold, out of time, lease lost: acted on before a fold starts, as any estimator allows.
            cancellation.ThrowIfCancellationRequested();
            var context = new TrialContext(trial.Parameters, trial.Number, options.Threads, options.Seed, cancellation, null, options.Metric, null);
            var model = pipeline(context).Fit(fold.TrainSet);
            scores.Add(Score(context.ML, model.Transform(fold.TestSet)));
            if (double.IsFinite(scores.Average())) report(scores.Count, scores.Average());
        }
        double mean = scores.Average();
        return (mean, Math.Sqrt(scores.Sum(s => (s - mean) * (s - mean)) / (scores.Count - 1)));
    }

    private double Score(MLContext context, IDataView scored)
    {
        if (options.IsRegression)
        {
            var r = context.Regression.Evaluate(scored, options.LabelColumnName);
            return options.Metric switch
            {
                SweepMetric.RSquared => r.RSquared,
                SweepMetric.MeanAbsoluteError => r.MeanAbsoluteError,
                _ => r.RootMeanSquaredError,
            };
        }
        var m = context.MulticlassClassification.Evaluate(scored, options.LabelColumnName);
        return options.Metric switch
        {
            SweepMetric.MicroAccuracy => m.MicroAccuracy,
            SweepMetric.MacroAccuracy => m.MacroAccuracy,
            _ => m.LogLoss,
        };
    }

    /// <summary>The best parameters' pipeline fitted on the training data, with every thread the sweep had.</summary>
    public ITransformer Refit(Parameters parameters)
    {
        int threads = Math.Min(Environment.ProcessorCount, options.Threads * options.ParallelTrials);
        var context = new TrialContext(parameters, -1, threads, options.Seed, options.Cancellation, validation, options.Metric, null);
        return pipeline(context).Fit(train);
    }
}
