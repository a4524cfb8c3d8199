using System.Globalization;
using System.Text;
using Ml.Cnn.Layers;

namespace Ml.Cnn.Networks;

/// <summary>
/// Formats a network like Keras' model.summary(), adding each layer's receptive field as the lectures compute it:
/// r_out = r_in + (k − 1)·d·j_in and j_out = j_in·s, where j is the distance in input pixels between neighbouring
/// outputs. Layers that see the whole input (dense, global pooling) report "global".
/// </summary>
internal static class NetworkSummary
{
    public static string Format(Network network)
    {
        var rows = new List<string[]> { new[] { "Layer (type)", "Output shape", "Receptive field", "Params", "Mult-adds" } };
        var field = new (int Size, int Jump, bool Global)[network.Nodes.Count];
        long totalParams = 0, totalMacs = 0;
        for (int i = 0; i < network.Nodes.Count; i++)
        {
            var node = network.Nodes[i];
            var inputs = node.Inputs.Select(j => j < 0 ? (1, 1, false) : field[j]).ToArray();
            var (size, jump, global) = (inputs.Max(f => f.Item1), inputs.Max(f => f.Item2), inputs.Any(f => f.Item3));
            long parameters = node.Layer.Parameters.Sum(p => (long)p.Shape.Length), macs = node.Layer.MultiplyAdds;
            switch (node.Layer)
            {
                case Conv2d conv:
                    size += (conv.KernelSize.H - 1) * conv.Dilation.H * jump;
                    jump *= conv.Stride.H;
                    break;
                case Pool2d pool:
                    size += (pool.KernelSize - 1) * jump;
                    jump *= pool.Stride;
                    break;
                case Dense or GlobalAvgPool:
                    global = true;
                    break;
            }
            field[i] = (size, jump, global);
            totalParams += parameters;
            totalMacs += macs;
            string type = node.Layer.GetType().Name;
            string inputsText = node.Inputs.Count > 1 ? " ← " + string.Join(", ", node.Inputs.Select(j => j < 0 ? "input" : network.Nodes[j].Name)) : "";
            rows.Add([$"{node.Name} ({type}){inputsText}", node.OutputShape.ToString(), global ? "global" : $"{size}x{size}",
                parameters.ToString("N0", CultureInfo.InvariantCulture), macs.ToString("N0", CultureInfo.InvariantCulture)]);
        }
        var widths = Enumerable.Range(0, 5).Select(c => rows.Max(r => r[c].Length)).ToArray();
        var text = new StringBuilder();
        string rule = new('-', widths.Sum() + 8);
        text.AppendLine($"Input: {network.InputShape}");
        for (int r = 0; r < rows.Count; r++)
        {
            var row = rows[r];
            text.AppendLine($"{row[0].PadRight(widths[0])}  {row[1].PadRight(widths[1])}  {row[2].PadLeft(widths[2])}  {row[3].PadLeft(widths[3])}  {row[4].PadLeft(widths[4])}");
            if (r == 0) text.AppendLine(rule);
        }
        text.AppendLine(rule);
        text.AppendLine(FormattableString.Invariant($"Total parameters: {totalParams:N0}; trainable: {network.Parameters.Where(p => p.Trainable).Sum(p => (long)p.Shape.Length):N0}"));
        text.AppendLine(FormattableString.Invariant($"Multiply-adds per item (forward): {totalMacs:N0}"));
        return text.ToString();
    }
}
