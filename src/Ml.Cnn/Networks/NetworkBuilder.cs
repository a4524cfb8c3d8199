using Ml.Cnn.Layers;

namespace Ml.Cnn.Networks;

/// <summary>A handle to a node's output while a network is being described.</summary>
public readonly record struct Node(int Index);

/// <summary>
/// Describes a network as a graph of layers: chains, parallel branches joined by <see cref="Concat"/>, residual
/// joins by <see cref="Add"/>. Layers are declared without input sizes; <see cref="Network.Create"/> infers them.
/// <code>
/// var b = new NetworkBuilder();
/// var x = b.Chain(b.Input, new Conv2d(16, 3, padding: 1), new BatchNorm(), new Relu());
/// var y = b.Chain(x, new Conv2d(16, 3, padding: 1), new BatchNorm());
/// b.Chain(b.Merge(new Add(), x, y), new Relu(), new GlobalAvgPool(), new Dense(10));
/// </code>
/// </summary>
public sealed class NetworkBuilder
{
    internal readonly List<(NetworkLayer Layer, int[] Inputs)> Nodes = [];

    /// <summary>The network input.</summary>
    public Node Input => new(-1);

    /// <summary>The most recently added node: the network output unless another is chosen.</summary>
    public Node Last => Nodes.Count > 0 ? new(Nodes.Count - 1) : throw new InvalidOperationException("The network has no layers.");

    /// <summary>Appends a single-input layer fed by <paramref name="input"/>.</summary>
    public Node Add(Layer layer, Node input)
    {
        ArgumentNullException.ThrowIfNull(layer);
        Check(input);
        Nodes.Add((layer, [input.Index]));
        return Last;
    }

    /// <summary>Appends layers one after another, starting from <paramref name="input"/>; returns the last.</summary>
    public Node Chain(Node input, params Layer[] layers)
    {
        foreach (var layer in layers) input = Add(layer, input);
        return input;
    }

    /// <summary>Joins branches with a merge layer (concatenation or sum).</summary>
    public Node Merge(MergeLayer merge, params Node[] inputs)
    {
        ArgumentNullException.ThrowIfNull(merge);
        foreach (var input in inputs) Check(input);
        Nodes.Add((merge, inputs.Select(i => i.Index).ToArray()));
        return Last;
    }

    /// <summary>Puts another single-input layer in a node's place, keeping its input (e.g. a new classifier head).</summary>
    public void ReplaceLayer(Node node, Layer layer)
    {
        Check(node);
        if (node.Index < 0 || Nodes[node.Index].Layer is not Layer)
            throw new ArgumentException($"Node {node.Index} is not a single-input layer.", nameof(node));
        Nodes[node.Index] = (layer, Nodes[node.Index].Inputs);
    }

    private void Check(Node node)
    {
        if (node.Index < -1 || node.Index >= Nodes.Count)
            throw new ArgumentException($"Node {node.Index} does not belong to this builder (it has {Nodes.Count} nodes).", nameof(node));
    }

    /// <summary>A plain stack of layers.</summary>
    public static NetworkBuilder Sequential(params Layer[] layers)
    {
        var builder = new NetworkBuilder();
        builder.Chain(builder.Input, layers);
        return builder;
    }
}
