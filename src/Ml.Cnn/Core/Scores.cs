namespace Ml.Cnn.Core;

/// <summary>Reading a prediction off a score vector, with one tie rule everywhere.</summary>
public static class Scores
{
    /// <summary>The index of the largest score; ties go to the lowest index (as scipy's mode and PyTorch's argmax do).</summary>
    public static int ArgMax(ReadOnlySpan<float> scores)
    {
        int best = 0;
        for (int c = 1; c < scores.Length; c++) if (scores[c] > scores[best]) best = c;
        return best;
    }
}
