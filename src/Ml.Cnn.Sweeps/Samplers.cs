namespace Ml.Cnn.Sweeps;

/// <summary>
/// Proposes trial <c>number</c>'s parameters. A sampler is a pure function of the space, the trial number, its seed
/// and the trials finished so far, so a trial taken again after its worker died gets the parameters stored for it and
/// one worker's sweep is the same every time.
/// </summary>
public interface ISampler
{
    /// <summary>The sampler and its settings, stored with the study: every worker of a study must use the same.</summary>
    string Description { get; }

    /// <summary>How many distinct trials the sampler can propose (a grid's size), or null for no limit.</summary>
    int? Size(SearchSpace space);

    /// <summary>The parameters of trial <paramref name="number"/>.</summary>
    Parameters Sample(SearchSpace space, int number, StudyView study);
}

/// <summary>
/// Every combination of every choice, every integer (up to <c>steps</c> of them) and <c>steps</c> evenly spaced points
/// of each continuous range (log-spaced on a log scale); a conditional parameter only where its condition holds.
/// The first parameter changes slowest, unless a seed shuffles the order.
/// </summary>
public sealed class GridSampler : ISampler
{
    private readonly int steps;
    private readonly int? shuffleSeed;

    /// <summary>A grid of <paramref name="steps"/> points a range, in shuffled order if <paramref name="shuffleSeed"/> is given.</summary>
    public GridSampler(int steps = 3, int? shuffleSeed = null)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "A grid needs at least 1 step per range.");
        (this.steps, this.shuffleSeed) = (steps, shuffleSeed);
    }

    /// <inheritdoc/>
    public string Description => $"grid(steps={steps}{(shuffleSeed is { } s ? $", shuffle={s}" : "")})";

    /// <inheritdoc/>
    public int? Size(SearchSpace space) => Points(space).Count;

    /// <inheritdoc/>
    public Parameters Sample(SearchSpace space, int number, StudyView study)
    {
        var points = Points(space);
        if (number >= points.Count) throw new ArgumentOutOfRangeException(nameof(number), number, $"The grid has {points.Count} points.");
        return points[number];
    }

    /// <summary>The grid, in the order trials visit it.</summary>
    public IReadOnlyList<Parameters> Points(SearchSpace space)
    {
        var options = space.ToList();
        var points = new List<Parameters>();
        void Visit(int index, Dictionary<string, object> values)
        {
            if (index == options.Count) { points.Add(new Parameters(new Dictionary<string, object>(values))); return; }
            var (name, option) = options[index];
            if (!space.IsActive(option, values)) { Visit(index + 1, values); return; }
            foreach (var value in option.GridValues(steps))
            {
                values[name] = value;
                Visit(index + 1, values);
                values.Remove(name);
            }
        }
        Visit(0, []);
        if (shuffleSeed is { } seed) new Random(seed).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(points));
        return points;
    }
}

/// <summary>Independent uniform draws (log-uniform on a log scale), from a random stream per seed and trial number.</summary>
public sealed class RandomSampler(int seed = 1) : ISampler
{
    /// <inheritdoc/>
    public string Description => $"random(seed={seed})";

    /// <inheritdoc/>
    public int? Size(SearchSpace space) => null;

    /// <inheritdoc/>
    public Parameters Sample(SearchSpace space, int number, StudyView study)
    {
        var random = TrialRandom(seed, number);
        return space.FromUnit((_, _, _) => random.NextDouble());
    }

    /// <summary>The random stream of one trial: the same for a seed and number on every machine and run.</summary>
    internal static Random TrialRandom(int seed, int number) => new((int)(Mix((ulong)(uint)seed << 32 | (uint)number) & int.MaxValue));

    private static ulong Mix(ulong x)
    {
        // SplitMix64's finalizer: neighbouring trial numbers get unrelated streams.
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}

/// <summary>
/// The tree-structured Parzen estimator (Bergstra et al., 2011), one parameter at a time: after
/// <c>startupTrials</c> random trials, the finished trials are split into the best ones (the top 10%, at most 25) and
/// the rest (pruned trials always among the rest); each parameter draws <c>candidates</c> values from a kernel density
/// of the best trials' values and keeps the one where that density most exceeds the density of the rest. With one
/// worker a seed gives the same sweep every run; with several, what each trial sees depends on which finished first.
/// </summary>
public sealed class TpeSampler : ISampler
{
    private readonly int seed, startupTrials, candidates;

    /// <summary>TPE after <paramref name="startupTrials"/> random trials, choosing among <paramref name="candidates"/> draws.</summary>
    public TpeSampler(int seed = 1, int startupTrials = 10, int candidates = 24)
    {
        if (startupTrials < 0) throw new ArgumentOutOfRangeException(nameof(startupTrials), startupTrials, "Start-up trials must not be negative.");
        if (candidates < 1) throw new ArgumentOutOfRangeException(nameof(candidates), candidates, "TPE needs at least 1 candidate a parameter.");
        (this.seed, this.startupTrials, this.candidates) = (seed, startupTrials, candidates);
    }

    /// <inheritdoc/>
    public string Description => $"tpe(seed={seed}, startup={startupTrials}, candidates={candidates})";

    /// <inheritdoc/>
    public int? Size(SearchSpace space) => null;

    /// <inheritdoc/>
    public Parameters Sample(SearchSpace space, int number, StudyView study)
    {
        var random = RandomSampler.TrialRandom(seed, number);
        var complete = study.Trials.Where(t => t.State == TrialState.Complete && t.Value is { } v && double.IsFinite(v))
            .OrderBy(t => t.Value!.Value * (study.Direction == StudyDirection.Maximize ? -1 : 1)).ThenBy(t => t.Number).ToList();
        if (number < startupTrials || complete.Count < 2) return space.FromUnit((_, _, _) => random.NextDouble());

        int goodCount = Math.Clamp((int)Math.Ceiling(0.1 * complete.Count), 1, 25);
        var good = complete.Take(goodCount).ToList();
        var bad = complete.Skip(goodCount).Concat(study.Trials.Where(t => t.State == TrialState.Pruned)).ToList();
        return space.FromUnit((name, option, _) =>
        {
            double[] Positions(List<TrialRecord> trials) =>
                trials.Where(t => t.Parameters.ContainsKey(name)).Select(t => option.ToUnit(t.Parameters[name])).ToArray();
            double[] l = Positions(good), g = Positions(bad);
            if (l.Length == 0) return random.NextDouble();
            return option is ChoiceOption choice ? PickChoice(choice.Values.Count, l, g, random) : PickContinuous(l, g, random);
        });
    }

    private double PickChoice(int count, double[] good, double[] bad, Random random)
    {
        // Category frequencies with one prior observation of each category.
        double[] Weights(double[] positions)
        {
            var w = Enumerable.Repeat(1.0, count).ToArray();
            foreach (var p in positions) w[Math.Min(count - 1, (int)(p * count))] += 1;
            double sum = w.Sum();
            return w.Select(x => x / sum).ToArray();
        }
        double[] l = Weights(good), g = Weights(bad);
        int best = 0;
        double bestScore = double.NegativeInfinity;
        for (int c = 0; c < candidates; c++)
        {
            double u = random.NextDouble(), cumulative = 0;
            int k = 0;
            while (k < count - 1 && (cumulative += l[k]) < u) k++;
            double score = Math.Log(l[k]) - Math.Log(g[k]);
            if (score > bestScore) (best, bestScore) = (k, score);
        }
        return (best + 0.5) / count;
    }

    private double PickContinuous(double[] good, double[] bad, Random random)
    {
        var l = new Parzen(good);
        var g = new Parzen(bad);
        double best = 0.5, bestScore = double.NegativeInfinity;
        for (int c = 0; c < candidates; c++)
        {
            double x = l.Sample(random);
            double score = Math.Log(l.Density(x)) - Math.Log(g.Density(x));
            if (score > bestScore) (best, bestScore) = (x, score);
        }
        return best;
    }

    /// <summary>
    /// Gaussian kernels at the observed positions plus a broad prior kernel (centre 0.5, width 1), so an empty or
    /// narrow set still explores. Each kernel is as wide as the larger gap to its neighbours (the prior's centre and
    /// the ends of [0, 1] among them) and no narrower than 1 / min(100, n + 1), as Bergstra et al. set them.
    /// </summary>
    private sealed class Parzen
    {
        private readonly double[] _centres;
        private readonly double[] _sigmas;
        private const double PriorCentre = 0.5, PriorSigma = 1.0;

        public Parzen(double[] points)
        {
            _centres = points;
            var sorted = points.Append(PriorCentre).Order().ToArray();
            double floor = 1.0 / Math.Min(100, points.Length + 1);
            _sigmas = points.Select(p =>
            {
                int i = Array.IndexOf(sorted, p);
                double left = i > 0 ? p - sorted[i - 1] : p, right = i < sorted.Length - 1 ? sorted[i + 1] - p : 1 - p;
                return Math.Clamp(Math.Max(left, right), floor, 1.0);
            }).ToArray();
        }

        public double Sample(Random random)
        {
            int k = random.Next(_centres.Length + 1);
            var (centre, sigma) = k == _centres.Length ? (PriorCentre, PriorSigma) : (_centres[k], _sigmas[k]);
            // Truncated to [0, 1] by drawing again: clamping would pile draws onto the ends, where the prior's
            // broad kernel makes the density ratio look best.
            for (int attempt = 0; attempt < 100; attempt++)
            {
                double gaussian = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
                double x = centre + sigma * gaussian;
                if (x is >= 0 and <= 1) return x;
            }
            return Math.Clamp(centre, 0, 1);
        }

        public double Density(double x)
        {
            double sum = Normal(x, PriorCentre, PriorSigma);
            for (int i = 0; i < _centres.Length; i++) sum += Normal(x, _centres[i], _sigmas[i]);
            return sum / (_centres.Length + 1) + 1e-12;
        }

        private static double Normal(double x, double mean, double sigma) =>
            Math.Exp(-0.5 * (x - mean) * (x - mean) / (sigma * sigma)) / (sigma * Math.Sqrt(2 * Math.PI));
    }
}
