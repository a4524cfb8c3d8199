using Ml.Cnn.Tensors;

namespace Ml.Cnn.Backends;

/// <summary>Memory management shared by the backends whose tensors live in host arrays.</summary>
public abstract class HostBackend
{
    /// <summary>Allocates a zero-filled host tensor owned by <paramref name="owner"/>.</summary>
    protected static Tensor AllocateHost(IBackend owner, TensorShape shape) => new(owner, new HostStorage(shape.Length), shape);

    /// <summary>The tensor's values as a span; the tensor must live in host memory.</summary>
    protected internal static Span<float> Data(Tensor t) => t.Storage is HostStorage host
        ? host.Data.AsSpan(0, t.Length)
        : throw new ArgumentException($"Tensor {t.Shape} lives on {t.Backend.Name}, not in host memory.");

    /// <summary>(m, n, k) of C = op(A)·op(B), after checking that the three shapes agree.</summary>
    protected static (int M, int N, int K) MatMulShape(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c)
    {
        if (a.Shape.Rank != 2 || b.Shape.Rank != 2 || c.Shape.Rank != 2)
            throw new ArgumentException($"MatMul needs matrices, got A {a.Shape}, B {b.Shape}, C {c.Shape}.");
        int m = transposeA ? a.Shape[1] : a.Shape[0], k = transposeA ? a.Shape[0] : a.Shape[1];
        int kb = transposeB ? b.Shape[1] : b.Shape[0], n = transposeB ? b.Shape[0] : b.Shape[1];
        if (k != kb || c.Shape[0] != m || c.Shape[1] != n)
            throw new ArgumentException($"MatMul shapes do not agree: op(A) is [{m}, {k}], op(B) is [{kb}, {n}], C is {c.Shape}.");
        return (m, n, k);
    }

    /// <summary>The tensor's backing array (for kernels that index directly).</summary>
    protected internal static float[] Array(Tensor t) => t.Storage is HostStorage host
        ? host.Data
        : throw new ArgumentException($"Tensor {t.Shape} lives on {t.Backend.Name}, not in host memory.");
}

/// <summary>The keep/drop decision of inverted dropout, a pure function of (seed, index) so any thread order agrees.</summary>
internal static class DropoutMask
{
    public static bool Keep(ulong seed, int index, float p)
    {
        ulong z = seed + (ulong)(index + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 40) * (1.0f / (1 << 24)) >= p;
    }
}
