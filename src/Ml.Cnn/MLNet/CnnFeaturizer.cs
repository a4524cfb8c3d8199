using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.Zoo;

namespace Ml.Cnn.MLNet;

/// <summary>
/// Outputs a trained network's activations at a named layer as a vector column, so CNN features feed KNN or any
/// ML.NET trainer. Fit does not train: the network is already trained.
/// <list type="table">
/// <item><term>Input column</term><description>Known-size vector of Single, the network's input image; or, for a model
/// trained on an image column, images (MLImage), prepared as in training</description></item>
/// <item><term>Output column</term><description>Vector of Single: the layer's activations, flattened</description></item>
/// </list>
/// </summary>
public sealed class CnnFeaturizerEstimator : IEstimator<CnnFeaturizerTransformer>
{
    private readonly CnnModel _model;
    private readonly string _layerName, _outputColumnName, _inputColumnName;

    internal CnnFeaturizerEstimator(CnnModel model, string layerName, string outputColumnName, string inputColumnName)
    {
        _model = model;
        _layerName = layerName;
        _outputColumnName = outputColumnName;
        _inputColumnName = inputColumnName;
        _ = model.Network[layerName]; // fail now, naming the known layers, rather than at Fit
    }

    /// <inheritdoc />
    public CnnFeaturizerTransformer Fit(IDataView input)
    {
        var images = _model.ImageInput is { } imageInput
            && ImageInput.IsImage(DataViewReader.FeatureColumn(input.Schema, _inputColumnName, allowImages: true).Type)
            ? imageInput.Prepare(input, _inputColumnName) : null;
        var transformer = new CnnFeaturizerTransformer(_model, _layerName, _outputColumnName, images?.PixelColumn ?? _inputColumnName, images);
        transformer.GetOutputSchema(input.Schema);
        return transformer;
    }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        CnnTraining.CheckFeatures(inputSchema, _inputColumnName, allowImages: _model.ImageInput is not null);
        var added = new DataViewSchema.Builder();
        added.AddColumn(_outputColumnName, new VectorDataViewType(NumberDataViewType.Single, _model.Network[_layerName].OutputShape.Length));
        return SchemaShapeAdapter.Append(inputSchema, added.ToSchema());
    }
}

/// <summary>Outputs a trained network's activations at a named layer as a float vector column (CNN features).</summary>
public sealed class CnnFeaturizerTransformer : ScoringTransformer
{
    private readonly CnnModel _model;

    internal CnnFeaturizerTransformer(CnnModel model, string layerName, string outputColumnName, string inputColumnName,
        ImageInput.Preparation? images = null)
    {
        _model = model;
        Images = images;
        var node = model.Network[layerName];
        int size = node.OutputShape.Length;
        LayerName = layerName;
        Scorer = new BatchScorer(inputColumnName, model.ImageShape.Length, size, [OutputColumn.Vector(outputColumnName, size)],
            (inputs, count, outputs) => model.Run(inputs, count, outputs, layerName), inputDimensions: model.ImageShape.Dims);
    }

    /// <summary>The layer whose activations are output.</summary>
    public string LayerName { get; }

    /// <summary>The trained network it runs.</summary>
    public CnnModel Model => _model;

    private protected override BatchScorer Scorer { get; }

    private protected override ImageInput.Preparation? Images { get; }

    private protected override ITransformer ToPersistable() =>
        ZipPersistence.Vector(output => Onnx.OnnxExporter.BuildRowScorer(_model.Network, _model.Normalization, Scorer.InputColumn, LayerName,
                Onnx.OnnxExporter.RowOutputs.Activations, output),
            Scorer);
}
