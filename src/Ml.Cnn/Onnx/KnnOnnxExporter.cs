using Ml.Cnn.Neighbors;
using Ml.Cnn.Onnx.Proto;
using static Ml.Cnn.Onnx.OnnxGraph;
using DataType = Ml.Cnn.Onnx.Proto.TensorProto.Types.DataType;

namespace Ml.Cnn.Onnx;

/// <summary>
/// Writes a k-nearest-neighbour classifier as a one-row ONNX scoring model that follows <see cref="KnnSearch"/> step
/// by step: a float shortlist from the dot-product ranking key (L2, cosine), exact distances of the shortlist in double
/// precision, ties to the lower training row, then the same vote. The training set is stored in the model.
/// </summary>
internal static class KnnOnnxExporter
{
    private const DataType Double = DataType.Double, Float = DataType.Float;

    /// <summary>Input <paramref name="inputName"/> [D]; outputs <paramref name="scoreName"/> [classes] (vote shares) and
    /// <paramref name="classIndexName"/> [1] (arg-max class index, as a float).</summary>
    public static ModelProto BuildRowScorer(KnnClassifier knn, string inputName, string scoreName, string classIndexName)
    {
        var graph = new OnnxGraph();
        int n = knn.Labels.Length, d = knn.Dimension, k = knn.K, classes = knn.ClassCount;
        graph.Input(inputName, d);
        string references = graph.Initializer("references", knn.Features, n, d);
        var (neighbours, distances) = knn.Distance == KnnDistance.Manhattan
            ? Manhattan(graph, inputName, references, k)
            : ViaDotProducts(graph, knn, inputName, references);

        string weights = knn.Weighting == KnnWeighting.Uniform
            ? graph.DoubleInitializer("uniform-weights", Enumerable.Repeat(1.0, k).ToArray(), k)
            : InverseDistanceWeights(graph, distances);
        string labels = graph.Int64Initializer("labels", knn.Labels.Select(l => (long)l).ToArray());
        var identity = new float[classes * classes];
        for (int c = 0; c < classes; c++) identity[c * classes + c] = 1;
        string oneHot = graph.Node("Gather", "neighbour-one-hot", [graph.Initializer("identity", identity, classes, classes), graph.Node("Gather", "neighbour-labels", [labels, neighbours])]);
        // Votes add in float and are divided by the double total, as KnnClassifier.Vote does.
        string votes = graph.Node("MatMul", "votes", [Cast(graph, "float-weights", weights, Float), oneHot]);
        string total = graph.Node("ReduceSum", "total-weight", [weights], Int("keepdims", 1));
        graph.Node("Cast", scoreName, [graph.Node("Div", "shares", [Cast(graph, "double-votes", votes, Double), total])], Int("to", (int)Float));
        Cast(graph, classIndexName, graph.Node("ArgMax", "class-index", [scoreName], Int("axis", 0), Int("keepdims", 1)), Float);
        graph.Output(scoreName, classes);
        graph.Output(classIndexName, 1);
        return graph.ToModel();
    }

    /// <summary>L1 has no shortlist: exact float distances to every reference, the K smallest (TopK breaks ties by lower index).</summary>
    private static (string Neighbours, string Distances) Manhattan(OnnxGraph graph, string input, string references, int k)
    {
        string all = graph.Node("ReduceSum", "l1-distances",
            [graph.Node("Abs", "abs-differences", [graph.Node("Sub", "differences", [references, input])]), graph.Int64Initializer("axis-1", 1)],
            Int("keepdims", 0));
        return TopK(graph, "nearest", all, k);
    }

    private static (string Neighbours, string Distances) ViaDotProducts(OnnxGraph graph, KnnClassifier knn, string input, string references)
    {
        var prepared = knn.Prepared;
        int n = prepared.Count, k = knn.K;
        bool euclidean = knn.Distance == KnnDistance.Euclidean;
        // Ranking keys: L2 by ‖r − m‖² − 2 r·(q − m) (the shared mean m keeps the float products small; the terms
        // dropped from the centred form are the same for every reference), cosine by −r·q/‖r‖.
        string key;
        if (euclidean)
        {
            string centred = graph.Node("Sub", "centred-query", [input, graph.Initializer("mean", prepared.Mean!, knn.Dimension)]);
            key = graph.Node("Add", "ranking-key",
                [graph.Initializer("centred-squared-norms", prepared.KeyOffsets, n),
                 graph.Node("Mul", "scaled-dots", [graph.Node("MatMul", "dots", [references, centred]), graph.Initializer("minus-two", [-2f])])]);
        }
        else
            key = graph.Node("Mul", "ranking-key", [graph.Node("MatMul", "dots", [references, input]), graph.Initializer("key-scales", prepared.KeyScales, n)]);
        var (shortlist, _) = TopK(graph, "shortlist", key, KnnSearch.ShortlistSize(knn.Distance, k, n));

        string query = Cast(graph, "query-double", input, Double);
        string candidates = Cast(graph, "candidates-double", graph.Node("Gather", "candidates", [references, shortlist]), Double);
        string axis1 = graph.Int64Initializer("axis-1", 1);
        string exact;
        if (euclidean)
        {
            string differences = graph.Node("Sub", "differences", [query, candidates]);
            exact = graph.Node("ReduceSum", "squared-distances", [graph.Node("Mul", "squares", [differences, differences]), axis1], Int("keepdims", 0));
        }
        else
        {
            string dots = graph.Node("ReduceSum", "exact-dots", [graph.Node("Mul", "products", [candidates, query]), axis1], Int("keepdims", 0));
            string queryNorm = graph.Node("ReduceSum", "query-squared-norm", [graph.Node("Mul", "query-squares", [query, query])], Int("keepdims", 1));
            string referenceNorms = graph.Node("Gather", "candidate-squared-norms", [graph.DoubleInitializer("squared-norms", prepared.Norms, n), shortlist]);
            string denominator = graph.Node("Max", "norm-product",
                [graph.Node("Sqrt", "norm-product-unclamped", [graph.Node("Mul", "squared-norm-product", [queryNorm, referenceNorms])]), graph.DoubleInitializer("tiny", [1e-30], 1)]);
            exact = graph.Node("Sub", "cosine-distances", [graph.DoubleInitializer("one", [1.0], 1), graph.Node("Div", "cosines", [dots, denominator])]);
        }
        // Equal distances go to the lower training row: order the shortlist by row first, since TopK breaks ties by position.
        var (byRow, _) = TopK(graph, "by-row", Cast(graph, "shortlist-rows", shortlist, Float), KnnSearch.ShortlistSize(knn.Distance, k, n));
        string rows = graph.Node("Gather", "rows-in-order", [shortlist, byRow]);
        var (positions, nearest) = TopK(graph, "nearest", graph.Node("Gather", "distances-in-order", [exact, byRow]), k);
        string neighbours = graph.Node("Gather", "neighbours", [rows, positions]);
        string distances = euclidean ? graph.Node("Sqrt", "distances-double", [nearest]) : nearest;
        return (neighbours, Cast(graph, "neighbour-distances", distances, Float));
    }

    /// <summary>1 / distance in double, from the float distances; neighbours at distance 0, if any, take all the weight.</summary>
    private static string InverseDistanceWeights(OnnxGraph graph, string distances)
    {
        string value = Cast(graph, "distances-as-double", distances, Double);
        string atZero = Cast(graph, "at-zero", graph.Node("Equal", "is-zero", [value, graph.DoubleInitializer("zero", [0.0], 1)]), Double);
        string anyAtZero = graph.Node("Greater", "any-at-zero", [graph.Node("ReduceMax", "zero-count", [atZero], Int("keepdims", 1)), graph.DoubleInitializer("zero-threshold", [0.0], 1)]);
        return graph.Node("Where", "weights", [anyAtZero, atZero, graph.Node("Reciprocal", "inverse-distances", [value])]);
    }

    /// <summary>The <paramref name="count"/> smallest values, sorted; returns (indices, values).</summary>
    private static (string Indices, string Values) TopK(OnnxGraph graph, string name, string input, int count)
    {
        var node = new NodeProto { OpType = "TopK", Name = name };
        node.Input.Add(input);
        node.Input.Add(graph.Int64Initializer(name + ".k", count));
        node.Output.Add(name + ".values");
        node.Output.Add(name + ".indices");
        node.Attribute.Add(Int("largest", 0));
        node.Attribute.Add(Int("sorted", 1));
        graph.Graph.Node.Add(node);
        return (name + ".indices", name + ".values");
    }

    private static string Cast(OnnxGraph graph, string name, string input, DataType to) => graph.Node("Cast", name, [input], Int("to", (int)to));
}
