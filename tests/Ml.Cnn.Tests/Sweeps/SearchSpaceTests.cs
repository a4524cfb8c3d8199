using Ml.Cnn.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Neighbors;
using Ml.Cnn.Sweeps;
using Ml.Cnn.Training;
using Xunit;

namespace Ml.Cnn.Tests.Sweeps;

public sealed class SearchSpaceTests
{
    internal static SearchSpace OptimizerSpace() => new()
    {
        ["Optimizer"] = new ChoiceOption(OptimizerKind.Sgd, OptimizerKind.Adam),
        ["LearningRate"] = new UniformSingleOption(1e-4f, 1e-1f, logBase: true),
        ["Momentum"] = new UniformSingleOption(0.5f, 0.9f) { OnlyWhen = ("Optimizer", OptimizerKind.Sgd) },
        ["BatchSize"] = new UniformIntOption(16, 128, logBase: true),
    };

    [Fact]
    public void OptionsMapTheUnitIntervalOntoTheirRanges()
    {
        var rate = new UniformSingleOption(1e-4f, 1e-1f, logBase: true);
        Assert.Equal(1e-4f, (float)rate.FromUnit(0), 6);
        Assert.Equal(1e-1f, (float)rate.FromUnit(1), 6);
        Assert.Equal(Math.Sqrt(1e-5), (float)rate.FromUnit(0.5), 6); // the geometric middle on a log scale
        var ints = new UniformIntOption(1, 4);
        Assert.Equal([1, 2, 3, 4], new[] { 0.0, 0.3, 0.6, 0.99 }.Select(u => (int)ints.FromUnit(u)));
        Assert.Equal(4, ints.FromUnit(1.0));
        var choice = new ChoiceOption("a", "b", "c");
        Assert.Equal("c", choice.FromUnit(1.0));
        foreach (var v in choice.Values) Assert.Equal(v, choice.FromUnit(choice.ToUnit(v)));
        foreach (int v in Enumerable.Range(1, 4)) Assert.Equal(v, ints.FromUnit(ints.ToUnit(v)));
    }

    [Fact]
    public void AConditionalParameterIsPresentOnlyWhenItsConditionHolds()
    {
        var space = OptimizerSpace();
        var sampler = new RandomSampler(3);
        var view = new StudyView(StudyDirection.Maximize, []);
        var trials = Enumerable.Range(0, 200).Select(n => sampler.Sample(space, n, view)).ToList();
        Assert.All(trials, p => Assert.Equal(p.Get<OptimizerKind>("Optimizer") == OptimizerKind.Sgd, p.ContainsKey("Momentum")));
        Assert.Contains(trials, p => p.ContainsKey("Momentum"));
        Assert.Contains(trials, p => !p.ContainsKey("Momentum"));
    }

    [Fact]
    public void ParametersRoundTripThroughStorageJson()
    {
        var space = OptimizerSpace();
        var sampler = new RandomSampler(5);
        foreach (var n in Enumerable.Range(0, 50))
        {
            var p = sampler.Sample(space, n, new StudyView(StudyDirection.Maximize, []));
            var back = space.ReadJson(p.ToJson());
            Assert.Equal(p.ToJson(), back.ToJson());
            Assert.Equal(p.Get<float>("LearningRate"), back.Get<float>("LearningRate"));
            Assert.IsType<int>(back["BatchSize"]);
            Assert.IsType<OptimizerKind>(back["Optimizer"]);
        }
    }

    [Fact]
    public void ApplyToSetsPropertiesFieldsEnumsAndNestedMembers()
    {
        var space = new SearchSpace
        {
            ["Optimizer"] = new ChoiceOption("Adam"),
            ["LearningRate"] = new UniformSingleOption(0.25f, 0.25f),
            ["Epochs"] = new UniformIntOption(3, 3),
            ["Augmentation.CropPadding"] = new UniformIntOption(2, 2),
        };
        var p = new GridSampler().Sample(space, 0, new StudyView(StudyDirection.Maximize, []));
        var options = p.ApplyTo(new CnnTrainerOptions { Augmentation = new Augmentation() });
        Assert.Equal((OptimizerKind.Adam, 0.25f, 3, 2), (options.Optimizer, options.LearningRate, options.Epochs, options.Augmentation!.CropPadding));

        var knn = new GridSampler().Sample(new SearchSpace { ["K"] = new UniformIntOption(7, 7), ["Distance"] = new ChoiceOption(KnnDistance.Cosine) }, 0,
            new StudyView(StudyDirection.Maximize, [])).ApplyTo(new KnnOptions()); // KnnOptions has fields
        Assert.Equal((7, KnnDistance.Cosine), (knn.K, knn.Distance));
    }

    [Fact]
    public void ApplyToNamesTheParameterThatDoesNotFit()
    {
        var view = new StudyView(StudyDirection.Maximize, []);
        var unknown = new GridSampler().Sample(new SearchSpace { ["LearningRat"] = new UniformSingleOption(0.1f, 0.1f) }, 0, view);
        Assert.Contains("'LearningRat'", Assert.Throws<ArgumentException>(() => unknown.ApplyTo(new CnnTrainerOptions())).Message);
        var badEnum = new GridSampler().Sample(new SearchSpace { ["Optimizer"] = new ChoiceOption("Adamax") }, 0, view);
        var e = Assert.Throws<ArgumentException>(() => badEnum.ApplyTo(new CnnTrainerOptions()));
        Assert.Contains("'Optimizer'", e.Message);
        Assert.Contains("OptimizerKind", e.Message);
        var nested = new GridSampler().Sample(new SearchSpace { ["Augmentation.CropPadding"] = new UniformIntOption(1, 1) }, 0, view);
        Assert.Contains("Augmentation is null", Assert.Throws<ArgumentException>(() => nested.ApplyTo(new CnnTrainerOptions())).Message);
    }

    [Fact]
    public void BadSpacesAreRefusedWithTheirNames()
    {
        Assert.Throws<ArgumentException>(() => new ChoiceOption());
        Assert.Throws<ArgumentException>(() => new ChoiceOption(1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new UniformSingleOption(0, 1, logBase: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => new UniformIntOption(5, 4));
        var space = new SearchSpace { ["A"] = new ChoiceOption(1, 2) };
        Assert.Contains("'A'", Assert.Throws<ArgumentException>(() => space["A"] = new ChoiceOption(3)).Message);
        Assert.Contains("'B'", Assert.Throws<ArgumentException>(() => space["C"] = new ChoiceOption(3) { OnlyWhen = ("B", 1) }).Message);
        Assert.Contains("'D' depends on 'A' = 7", Assert.Throws<ArgumentException>(() => space["D"] = new ChoiceOption(3) { OnlyWhen = ("A", 7) }).Message);
        Assert.Contains("'Z'", Assert.Throws<KeyNotFoundException>(() => space["Z"]).Message);
        Assert.Throws<ArgumentException>(() => new ChoiceOption(1, null!));   // storage keeps JSON: no null, NaN or ∞
        Assert.Throws<ArgumentException>(() => new ChoiceOption(double.NaN));
        Assert.Equal("minResource", Assert.Throws<ArgumentOutOfRangeException>(() => new AshaPruner(minResource: 0)).ParamName);
        Assert.Equal("reductionFactor", Assert.Throws<ArgumentOutOfRangeException>(() => new AshaPruner(reductionFactor: 1)).ParamName);
        Assert.Equal("candidates", Assert.Throws<ArgumentOutOfRangeException>(() => new TpeSampler(candidates: 0)).ParamName);
        Assert.Equal("steps", Assert.Throws<ArgumentOutOfRangeException>(() => new GridSampler(steps: 0)).ParamName);
    }
}
