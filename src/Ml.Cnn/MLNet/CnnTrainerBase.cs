using Microsoft.ML;
using Microsoft.ML.Runtime;
using Ml.Cnn.Data;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Training;

namespace Ml.Cnn.MLNet;

/// <summary>
/// What the CNN trainers share: their options, checked when the trainer is created; the MLContext they were created
/// from (its seed when the options give none, its log); and making and training the network for the data read.
/// </summary>
public abstract class CnnTrainerBase<TTransformer> : IEstimator<TTransformer> where TTransformer : class, ITransformer
{
    private readonly IHostEnvironment? _environment;
    private readonly ulong _contextSeed;

    private protected CnnTrainerBase(CnnTrainerOptions options, IHostEnvironment? environment)
    {
        CnnTraining.ValidateOptions(options);
        Options = options;
        _environment = environment;
        _contextSeed = MLContextAccess.SeedFrom(environment);
    }

    /// <summary>The options this trainer was created with.</summary>
    public CnnTrainerOptions Options { get; }

    /// <inheritdoc />
    public abstract TTransformer Fit(IDataView input);

    /// <inheritdoc />
    public abstract SchemaShape GetOutputSchema(SchemaShape inputSchema);

    /// <summary>Creates the network for <paramref name="outputs"/> outputs and trains it.</summary>
    private protected (Network Network, TrainingResult Result) Train(ImageDataset data, ImageDataset? validation, int outputs, TensorShape imageShape)
    {
        ulong seed = Options.Seed ?? _contextSeed;
        var network = CnnTraining.CreateNetwork(Options, outputs, imageShape, seed);
        return (network, CnnTraining.Train(network, data, Options, validation, seed, _environment));
    }
}
