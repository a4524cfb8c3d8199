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

    private readonly CnnTask _task;

    private protected CnnTrainerBase(CnnTrainerOptions options, IHostEnvironment? environment, CnnTask task = CnnTask.Classification)
    {
        CnnTraining.ValidateOptions(options, task);
        _task = task;
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

    /// <summary>
    /// The training data as the network reads it. A feature column of pixel vectors is read as it is; for an image
    /// column the images (and the validation set's) are resized and extracted (<see cref="ImageInput"/>), and the
    /// options returned name the pixel column.
    /// </summary>
    private protected (IDataView Data, CnnTrainerOptions Options, ImageInput? Input, ImageInput.Preparation? Images) Prepare(IDataView data)
    {
        var column = DataViewReader.FeatureColumn(data.Schema, Options.FeatureColumnName, allowImages: true);
        if (column.Type is not Microsoft.ML.Transforms.Image.ImageDataViewType imageType) return (data, Options, null, null);
        var input = ImageInput.For(Options, imageType);
        var images = input.Prepare(data, Options.FeatureColumnName);
        var validation = Options.ValidationSet is { } set ? images.Transformer.Transform(set) : null;
        return (images.Transformer.Transform(data), Options.ForPixels(images.PixelColumn, input.Shape, validation), input, images);
    }

    /// <summary>Creates the network for <paramref name="outputs"/> outputs (classes per pixel for segmentation) and trains it.</summary>
    private protected (Network Network, TrainingResult Result) Train(CnnTrainerOptions options, ImageDataset data, ImageDataset? validation,
        int outputs, TensorShape imageShape)
    {
        ulong seed = options.Seed ?? _contextSeed;
        var backend = CnnTraining.BackendFor(options, _environment);
        Network? network = null;
        try
        {
            network = CnnTraining.CreateNetwork(options, outputs, imageShape, seed, _task, backend);
            return (network, CnnTraining.Train(network, data, options, validation, seed, _environment));
        }
        catch
        {
            // A failed fit returns no model to hold the device's memory: release it now (a GPU backend is disposable).
            network?.Dispose();
            (backend as IDisposable)?.Dispose();
            throw;
        }
    }
}
