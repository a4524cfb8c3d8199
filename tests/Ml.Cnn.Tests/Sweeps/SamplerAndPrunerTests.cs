using Ml.Cnn.Sweeps;
using Xunit;

namespace Ml.Cnn.Tests.Sweeps;

public sealed class SamplerAndPrunerTests
{
    private static readonly StudyView Empty = new(StudyDirection.Maximize, []);

    internal static TrialRecord Record(int number, TrialState state, double? value, params double[] curve) =>
        new(number, state, new Parameters(new Dictionary<string, object>()), value, null,
            curve.Select((v, i) => (i + 1, v)).ToList(), 1, 0, null);

    [Fact]
    public void RandomDrawsFollowTheirRangesAndRepeatUnderASeed()
    {
        var space = new SearchSpace
        {
            ["x"] = new UniformSingleOption(0, 10),
            ["rate"] = new UniformSingleOption(1e-4f, 1, logBase: true),
            ["k"] = new UniformIntOption(1, 4),
            ["c"] = new ChoiceOption("a", "b", "c", "d", "e"),
        };
        var draws = Enumerable.Range(0, 4000).Select(n => new RandomSampler(7).Sample(space, n, Empty)).ToList();
        var x = draws.Select(d => (double)d.Get<float>("x")).ToList();
        Assert.InRange(x.Average(), 4.8, 5.2);                                      // uniform: mean 5, σ/√n ≈ 0.05
        Assert.InRange(x.Count(v => v < 2.5) / 4000.0, 0.22, 0.28);
        Assert.InRange(draws.Count(d => d.Get<float>("rate") < 1e-2f) / 4000.0, 0.47, 0.53); // log-uniform: half below the middle decade
        foreach (int k in Enumerable.Range(1, 4)) Assert.InRange(draws.Count(d => d.Get<int>("k") == k) / 4000.0, 0.22, 0.28);
        foreach (var c in new[] { "a", "b", "c", "d", "e" }) Assert.InRange(draws.Count(d => d.Get<string>("c") == c) / 4000.0, 0.17, 0.23);

        var again = Enumerable.Range(0, 50).Select(n => new RandomSampler(7).Sample(space, n, Empty).ToJson());
        Assert.Equal(draws.Take(50).Select(d => d.ToJson()), again);
        var other = Enumerable.Range(0, 50).Select(n => new RandomSampler(8).Sample(space, n, Empty).ToJson());
        Assert.NotEqual(again, other);
    }

    [Fact]
    public void TheGridVisitsEveryCombinationOnceAndConditionsPruneIt()
    {
        var space = SearchSpaceTests.OptimizerSpace(); // Optimizer × rate (3) × [momentum (3) for SGD only] × batch (3)
        var grid = new GridSampler(steps: 3);
        var points = grid.Points(space);
        Assert.Equal(3 * 3 * 3 + 3 * 3, points.Count);
        Assert.Equal(points.Count, grid.Size(space));
        Assert.Equal(points.Count, points.Select(p => p.ToJson()).Distinct().Count());
        Assert.Equal([1e-4f, (float)Math.Pow(10, -2.5), 1e-1f], points.Select(p => p.Get<float>("LearningRate")).Distinct().Order());
        Assert.Equal([16, 45, 128], points.Select(p => p.Get<int>("BatchSize")).Distinct().Order());
        var shuffled = new GridSampler(steps: 3, shuffleSeed: 1).Points(space).Select(p => p.ToJson()).ToList();
        Assert.NotEqual(points.Select(p => p.ToJson()), shuffled);
        Assert.Equal(points.Select(p => p.ToJson()).Order(), shuffled.Order());
    }

    [Fact]
    public void TpeConcentratesNearTheOptimumAndRepeatsUnderASeed()
    {
        var space = new SearchSpace { ["x"] = new UniformSingleOption(0, 1), ["c"] = new ChoiceOption("good", "bad1", "bad2") };
        double Objective(Parameters p) => -Math.Abs(p.Get<float>("x") - 0.3) - (p.Get<string>("c") == "good" ? 0 : 0.5);
        List<Parameters> Run(ISampler sampler)
        {
            var trials = new List<TrialRecord>();
            for (int n = 0; n < 60; n++)
            {
                var p = sampler.Sample(space, n, new StudyView(StudyDirection.Maximize, trials));
                trials.Add(new TrialRecord(n, TrialState.Complete, p, Objective(p), null, [], 1, 0, null));
            }
            return trials.Select(t => t.Parameters).ToList();
        }
        var tpe = Run(new TpeSampler(seed: 2));
        var random = Run(new RandomSampler(2));
        double Distance(IEnumerable<Parameters> ps) => ps.Average(p => Math.Abs(p.Get<float>("x") - 0.3));
        Assert.True(Distance(tpe.Skip(30)) < 0.6 * Distance(random.Skip(30)), $"TPE {Distance(tpe.Skip(30))}, random {Distance(random.Skip(30))}");
        Assert.True(tpe.Skip(30).Count(p => p.Get<string>("c") == "good") > 20);
        Assert.Equal(tpe.Take(10).Select(p => p.ToJson()), random.Take(10).Select(p => p.ToJson())); // its startup trials are random ones
        Assert.Equal(tpe.Select(p => p.ToJson()), Run(new TpeSampler(seed: 2)).Select(p => p.ToJson()));
    }

    [Fact]
    public void AshaPromotesTheTopThirdAtEachRungAndJudgesNothingBetween()
    {
        var asha = new AshaPruner(minResource: 1, reductionFactor: 3);
        Assert.Equal([1, 3, 9], Enumerable.Range(1, 12).Where(asha.IsRung));
        // Eight earlier trials reached rung 1 with 0.1 … 0.8; with this one, nine values: the best three go on.
        var earlier = Enumerable.Range(0, 8).Select(i => Record(i, TrialState.Pruned, 0.1 * (i + 1), 0.1 * (i + 1))).ToList();
        bool Prunes(double value, StudyDirection direction = StudyDirection.Maximize, int step = 1)
        {
            var trial = Record(99, TrialState.Running, null, Enumerable.Repeat(value, step).ToArray());
            return asha.ShouldPrune(new StudyView(direction, [.. earlier, trial]), trial, step);
        }
        Assert.False(Prunes(0.75));  // 0.8, 0.75, 0.7 are the top three
        Assert.False(Prunes(0.65));  // 0.8, 0.7, 0.65
        Assert.True(Prunes(0.55));   // 0.8, 0.7, 0.6 beat it
        Assert.False(Prunes(0.05, step: 2)); // not a rung
        Assert.True(Prunes(0.75, StudyDirection.Minimize));
        Assert.False(Prunes(0.05, StudyDirection.Minimize));
        // Before η values exist at a rung, only the best so far goes on.
        earlier = [Record(0, TrialState.Complete, 0.5, 0.5)];
        Assert.True(Prunes(0.4));
        Assert.False(Prunes(0.6));
    }

    [Fact]
    public void MedianStopsATrialBelowTheMedianOfOthersAtTheSameStep()
    {
        var median = new MedianPruner(startupTrials: 3, warmupSteps: 1);
        var done = new[] { Record(0, TrialState.Complete, 0.6, 0.2, 0.4, 0.6), Record(1, TrialState.Complete, 0.7, 0.3, 0.5, 0.7),
            Record(2, TrialState.Complete, 0.8, 0.4, 0.6, 0.8), Record(3, TrialState.Failed, null, 0.9, 0.9) };
        bool Prunes(params double[] curve)
        {
            var trial = Record(9, TrialState.Running, null, curve);
            return median.ShouldPrune(new StudyView(StudyDirection.Maximize, [.. done, trial]), trial, curve.Length);
        }
        Assert.False(Prunes(0.0));        // step 1 is warm-up
        Assert.True(Prunes(0.0, 0.45));   // median at step 2 is 0.5 (the failed trial does not count)
        Assert.False(Prunes(0.0, 0.55));
        Assert.False(new MedianPruner(startupTrials: 4).ShouldPrune(new StudyView(StudyDirection.Maximize, done), Record(9, TrialState.Running, null, 0, 0), 2));
    }
}
