using System.Numerics;
using System.Runtime.Intrinsics;
using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;

namespace Ml.Cnn.Neighbors;

/// <summary>Distance between feature vectors.</summary>
public enum KnnDistance
{
    /// <summary>Euclidean (L2).</summary>
    Euclidean,
    /// <summary>Manhattan (L1).</summary>
    Manhattan,
    /// <summary>1 − cosine similarity.</summary>
    Cosine,
}

/// <summary>
/// Exact brute-force k-nearest-neighbour search over row-major float vectors, multithreaded and tiled so memory
/// stays bounded (a block of queries against a block of references at a time; 10,000 × 60,000 never materializes).
/// L2 and cosine use the GEMM identity ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b in float32 to shortlist candidates, then rank
/// the shortlist with exact double-precision distances. For L2 both sides are first centred on the references' mean
/// (distances do not change), so a large offset shared by all vectors cannot drown the differences in rounding.
/// L1 uses a SIMD kernel: over bytes when every value is an 8-bit pixel (<see cref="ByteGrid"/>: exact and about four
/// times faster), over floats otherwise. Ties in distance go to the lower reference index. Given a device backend
/// (the GPU's), the L2 and cosine products run there (<see cref="IBackend.MatMul"/>) and the rest on the host; L1 stays
/// on the host.
/// </summary>
public static class KnnSearch
{
    private const int QueryBlock = 1024, ReferenceBlock = 4096;
    // Bytes of references per L1 task: 200 KB (64 × 784 floats) stay in any current core's L2.
    private const int ManhattanSliceBytes = 200 << 10;

    /// <summary>
    /// For each of <paramref name="queryCount"/> queries, the indices and distances of its <paramref name="k"/>
    /// nearest references, nearest first. With a <paramref name="backend"/> that is not a host one, the products of
    /// L2 and cosine run on it.
    /// </summary>
    public static (int[] Indices, float[] Distances) Search(float[] references, int referenceCount, float[] queries, int queryCount,
        int dimension, int k, KnnDistance distance, int threads = 0, IBackend? backend = null)
    {
        using var prepared = PreparedReferences.Create(references, referenceCount, dimension, distance, backend);
        return Search(prepared, queries, queryCount, k, threads);
    }

    /// <summary>
    /// Searches references prepared once (centred copy, norms, ranking-key coefficients), so that a classifier
    /// scoring batch after batch does not redo that work for every batch.
    /// </summary>
    internal static (int[] Indices, float[] Distances) Search(PreparedReferences prepared, float[] queries, int queryCount, int k, int threads = 0)
    {
        var (references, referenceCount, dimension, distance) = (prepared.Raw, prepared.Count, prepared.Dimension, prepared.Distance);
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "K must be at least 1.");
        if (k > referenceCount) throw new ArgumentOutOfRangeException(nameof(k), k, $"K ({k}) is larger than the number of references ({referenceCount}).");
        threads = threads <= 0 ? Environment.ProcessorCount : threads;
        var indices = new int[queryCount * k];
        var distances = new float[queryCount * k];
        int shortlist = ShortlistSize(distance, k, referenceCount);
        float[]? mean = prepared.Mean;
        double[] referenceNorms = prepared.Norms;
        double[] queryNorms = distance == KnnDistance.Cosine ? SquaredNorms(queries, queryCount, dimension, null) : [];
        bool viaDot = distance != KnnDistance.Manhattan;
        float[] keyOffsets = prepared.KeyOffsets, keyScales = prepared.KeyScales;
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads };
        var block = new float[QueryBlock * ReferenceBlock];
        var centredQueries = mean is null ? queries : new float[Math.Min(QueryBlock, queryCount) * dimension];
        var queryBytes = prepared.Bytes is { } grid ? ByteGrid.TryCreate(queries, queryCount, dimension, grid.Step) : null;
        int slice = queryBytes is null ? ManhattanSliceBytes / (dimension * sizeof(float)) : ManhattanSliceBytes / queryBytes.Stride;
        slice = Math.Max(1, slice);
        for (int q0 = 0; q0 < queryCount; q0 += QueryBlock)
        {
            int qn = Math.Min(QueryBlock, queryCount - q0);
            int queryOffset = mean is null ? q0 * dimension : 0;
            if (mean is not null) Centre(queries, q0, qn, dimension, mean, centredQueries, options);
            prepared.Device?.SetQueries(centredQueries.AsSpan(queryOffset), qn);
            var heaps = Enumerable.Range(0, qn).Select(_ => new TopK(shortlist)).ToArray();
            for (int r0 = 0; r0 < referenceCount; r0 += ReferenceBlock)
            {
                int rn = Math.Min(ReferenceBlock, referenceCount - r0);
                if (viaDot && prepared.Device is { } device) device.Multiply(r0 / ReferenceBlock, block);
                else if (viaDot) // block[i, j] = q_i · r_j (centred for L2)
                {
                    Sgemm.Multiply(false, true, qn, rn, dimension, 1f, centredQueries.AsSpan(queryOffset, qn * dimension), dimension,
                        prepared.Vectors.AsSpan(r0 * dimension, rn * dimension), dimension, 0f, block, rn, threads);
                }
                else
                    // A task takes a slice of references small enough to stay in L2 while every query pair of the block
                    // passes over it: a pair streaming the whole block (12.8 MB at 784 values) made L1 memory-bound.
                {
                    // Few slices (a small reference set) would leave threads idle: the query pairs are split too.
                    int slices = (rn + slice - 1) / slice, pairs = (qn + 1) / 2;
                    int groups = Math.Clamp(2 * threads / slices, 1, pairs);
                    Parallel.For(0, slices * groups, options, task =>
                    {
                        int first = task / groups * slice, group = task % groups;
                        var rows = new BlockRows(q0, 2 * (pairs * group / groups), Math.Min(qn, 2 * (pairs * (group + 1) / groups)),
                            r0 + first, Math.Min(slice, rn - first), block, rn, first);
                        if (queryBytes is null) ManhattanRows(queries, references, dimension, rows);
                        else ManhattanRows(queryBytes, prepared.Bytes!, rows);
                    });
                }
                Parallel.For(0, qn, options, i => Scan(block.AsSpan(i * rn, rn), viaDot, keyOffsets.AsSpan(viaDot ? r0 : 0), keyScales.AsSpan(viaDot ? r0 : 0), heaps[i], r0));
            }
            Parallel.For(0, qn, options, i =>
            {
                var (candidates, fast) = heaps[i].Sorted();
                if (distance != KnnDistance.Manhattan)
                    Rerank(candidates, fast, queries.AsSpan((q0 + i) * dimension, dimension), references, dimension, distance,
                        distance == KnnDistance.Cosine ? queryNorms[q0 + i] : 0, referenceNorms);
                candidates.AsSpan(0, k).CopyTo(indices.AsSpan((q0 + i) * k, k));
                fast.AsSpan(0, k).CopyTo(distances.AsSpan((q0 + i) * k, k));
                if (queryBytes is not null)
                    foreach (ref float d in distances.AsSpan((q0 + i) * k, k)) d *= queryBytes.Step; // byte sums to distances
            });
        }
        return (indices, distances);
    }

    /// <summary>
    /// Candidates kept from the fast distances: wider than K so rounding in them cannot push a true neighbour out
    /// (L1's fast distances are exact).
    /// </summary>
    internal static int ShortlistSize(KnnDistance distance, int k, int referenceCount) =>
        distance == KnnDistance.Manhattan ? k : Math.Min(referenceCount, Math.Max(2 * k, k + 16));

    /// <summary>Everything about the references that does not depend on the queries.</summary>
    internal sealed class PreparedReferences : IDisposable
    {
        public required float[] Raw { get; init; }
        public required float[] Vectors { get; init; } // centred for L2, the raw vectors otherwise
        public required int Count { get; init; }
        public required int Dimension { get; init; }
        public required KnnDistance Distance { get; init; }
        public float[]? Mean { get; init; }
        public ByteGrid? Bytes { get; init; } // L1 over 8-bit pixels
        public required double[] Norms { get; init; }
        public required float[] KeyOffsets { get; init; }
        public required float[] KeyScales { get; init; }
        public DeviceProducts? Device { get; init; } // the products on a device backend; null on the host

        /// <summary>Prepares the references; a device <paramref name="backend"/> gets them for the products of L2 and cosine.</summary>
        public static PreparedReferences Create(float[] references, int count, int dimension, KnnDistance distance, IBackend? backend = null)
        {
            float[]? mean = distance == KnnDistance.Euclidean ? KnnSearch.Mean(references, count, dimension) : null;
            var vectors = references;
            if (mean is not null)
            {
                vectors = new float[count * dimension];
                Centre(references, 0, count, dimension, mean, vectors, new ParallelOptions());
            }
            double[] norms = distance == KnnDistance.Manhattan ? [] : SquaredNorms(vectors, count, dimension, null);
            // Ranking key per reference, from the dot product: a query's own norm is constant across references and
            // cannot change its ranking, so L2 ranks by ‖r‖² − 2q·r and cosine by −q·r/‖r‖; exact distances come in
            // the re-ranking.
            float[] offsets = distance switch
            {
                KnnDistance.Euclidean => norms.Select(n => (float)n).ToArray(),
                KnnDistance.Cosine => new float[count],
                _ => [],
            };
            float[] scales = distance switch
            {
                KnnDistance.Euclidean => Enumerable.Repeat(-2f, count).ToArray(),
                KnnDistance.Cosine => norms.Select(n => (float)(-1 / Math.Max(Math.Sqrt(n), 1e-30))).ToArray(),
                _ => [],
            };
            return new PreparedReferences
            {
                Raw = references, Vectors = vectors, Count = count, Dimension = dimension, Distance = distance, Mean = mean,
                Bytes = distance == KnnDistance.Manhattan ? ByteGrid.TryCreate(references, count, dimension) : null, Norms = norms, KeyOffsets = offsets, KeyScales = scales,
                Device = backend is null or HostBackend || distance == KnnDistance.Manhattan ? null
                    : new DeviceProducts(backend, vectors, count, dimension, ReferenceBlock),
            };
        }

        public void Dispose() => Device?.Dispose();
    }

    private static double[] SquaredNorms(float[] vectors, int count, int dimension, float[]? mean)
    {
        var norms = new double[count];
        Parallel.For(0, count, i =>
        {
            double sum = 0;
            var v = vectors.AsSpan(i * dimension, dimension);
            for (int d = 0; d < dimension; d++)
            {
                double x = mean is null ? v[d] : (double)v[d] - mean[d];
                sum += x * x;
            }
            norms[i] = sum;
        });
        return norms;
    }

    private static float[] Mean(float[] vectors, int count, int dimension)
    {
        var sum = new double[dimension];
        for (int i = 0; i < count; i++)
        {
            var v = vectors.AsSpan(i * dimension, dimension);
            for (int d = 0; d < dimension; d++) sum[d] += v[d];
        }
        return sum.Select(s => (float)(s / count)).ToArray();
    }

    /// <summary>Rows [start, start + count) minus the mean, into the front of <paramref name="destination"/>.</summary>
    private static void Centre(float[] vectors, int start, int count, int dimension, float[] mean, float[] destination, ParallelOptions options) =>
        Parallel.For(0, count, options, i =>
        {
            var source = vectors.AsSpan((start + i) * dimension, dimension);
            var target = destination.AsSpan(i * dimension, dimension);
            for (int d = 0; d < dimension; d++) target[d] = source[d] - mean[d];
        });

    /// <summary>
    /// Offers a block row to the heap. Nearly every key loses to the current k-th best, so keys are computed and
    /// compared a vector at a time, and only a vector holding a winner is looked at element by element.
    /// </summary>
    private static void Scan(ReadOnlySpan<float> row, bool viaDot, ReadOnlySpan<float> offsets, ReadOnlySpan<float> scales, TopK heap, int r0)
    {
        float threshold = heap.Threshold;
        int j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int width = Vector<float>.Count;
            for (; j <= row.Length - width; j += width)
            {
                var values = new Vector<float>(row.Slice(j, width));
                var keys = viaDot ? new Vector<float>(offsets.Slice(j, width)) + new Vector<float>(scales.Slice(j, width)) * values : values;
                if (!Vector.LessThanAny(keys, new Vector<float>(threshold))) continue;
                for (int l = 0; l < width; l++)
                    if (keys[l] < threshold)
                    {
                        heap.Offer(keys[l], r0 + j + l);
                        threshold = heap.Threshold;
                    }
            }
        }
        for (; j < row.Length; j++)
        {
            float key = viaDot ? offsets[j] + scales[j] * row[j] : row[j];
            if (key < threshold)
            {
                heap.Offer(key, r0 + j);
                threshold = heap.Threshold;
            }
        }
    }

    /// <summary>Exact distances for the shortlist, re-sorted; the first K become the answer.</summary>
    private static void Rerank(int[] candidates, float[] distances, ReadOnlySpan<float> query, float[] references, int dimension,
        KnnDistance distance, double queryNorm, double[] referenceNorms)
    {
        var exact = new double[candidates.Length];
        for (int c = 0; c < candidates.Length; c++)
        {
            var reference = references.AsSpan(candidates[c] * dimension, dimension);
            double value = 0;
            if (distance == KnnDistance.Euclidean)
                for (int d = 0; d < dimension; d++) { double diff = (double)query[d] - reference[d]; value += diff * diff; }
            else
            {
                for (int d = 0; d < dimension; d++) value += (double)query[d] * reference[d];
                value = 1 - value / Math.Max(Math.Sqrt(queryNorm * referenceNorms[candidates[c]]), 1e-30);
            }
            exact[c] = value;
        }
        var order = Enumerable.Range(0, candidates.Length).OrderBy(c => exact[c]).ThenBy(c => candidates[c]).ToArray();
        var sortedCandidates = order.Select(c => candidates[c]).ToArray();
        var sortedDistances = order.Select(c => (float)(distance == KnnDistance.Euclidean ? Math.Sqrt(exact[c]) : exact[c])).ToArray();
        sortedCandidates.CopyTo(candidates, 0);
        sortedDistances.CopyTo(distances, 0);
    }

    /// <summary>
    /// A task's part of a block of L1 distances: the block's query rows <see cref="FirstRow"/>…<see cref="EndRow"/> − 1
    /// (queries from <see cref="Q0"/>) against <see cref="Count"/> references from <see cref="R0"/>, into columns
    /// <see cref="Column"/>… of <see cref="Block"/> (rows <see cref="RowLength"/> apart).
    /// </summary>
    private readonly record struct BlockRows(int Q0, int FirstRow, int EndRow, int R0, int Count, float[] Block, int RowLength, int Column)
    {
        /// <summary>Writes the distances of block rows <paramref name="row"/> and, if it is in the task, row + 1.</summary>
        public void Set(int row, int reference, float d0, float d1)
        {
            Block[row * RowLength + Column + reference] = d0;
            if (row + 1 < EndRow) Block[(row + 1) * RowLength + Column + reference] = d1;
        }
    }

    /// <summary>L1 distances over floats, two queries at a time sharing each reference load.</summary>
    private static void ManhattanRows(float[] queries, float[] references, int dimension, BlockRows rows)
    {
        for (int row = rows.FirstRow; row < rows.EndRow; row += 2)
        {
            var a = queries.AsSpan((rows.Q0 + row) * dimension, dimension);
            var b = row + 1 < rows.EndRow ? queries.AsSpan((rows.Q0 + row + 1) * dimension, dimension) : a;
            for (int j = 0; j < rows.Count; j++)
            {
                var (d0, d1) = L1Pair(a, b, references.AsSpan((rows.R0 + j) * dimension, dimension));
                rows.Set(row, j, d0, d1);
            }
        }
    }

    /// <summary>L1 distances over bytes, in byte steps (exact integers), two queries at a time.</summary>
    private static unsafe void ManhattanRows(ByteGrid queries, ByteGrid references, BlockRows rows)
    {
        int stride = queries.Stride;
        fixed (byte* q = queries.Values, r = references.Values)
            for (int row = rows.FirstRow; row < rows.EndRow; row += 2)
            {
                byte* a = q + (long)(rows.Q0 + row) * stride, b = row + 1 < rows.EndRow ? a + stride : a;
                for (int j = 0; j < rows.Count; j++)
                {
                    var (d0, d1) = ByteGrid.SumsOfAbsoluteDifferences(a, b, r + (long)(rows.R0 + j) * stride, stride);
                    rows.Set(row, j, d0, d1);
                }
            }
    }

    private static (float, float) L1Pair(ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> r) =>
        W512.IsSupported ? L1Pair<Vector512<float>, W512>(a, b, r)
        : W256.IsSupported ? L1Pair<Vector256<float>, W256>(a, b, r)
        : L1Pair<Vector128<float>, W128>(a, b, r);

    /// <summary>
    /// Σ|a − r| and Σ|b − r|, two vectors at a time with an accumulator each, so that no sum waits on the previous
    /// add (one accumulator per query left the loop bound by the add's latency).
    /// </summary>
    private static unsafe (float, float) L1Pair<V, S>(ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> r)
        where V : struct where S : struct, ISimd<V>
    {
        int n = r.Length, l = S.Lanes, i = 0;
        fixed (float* pa = a, pb = b, pr = r)
        {
            V a0 = S.Zero, a1 = S.Zero, b0 = S.Zero, b1 = S.Zero;
            for (; i + 2 * l <= n; i += 2 * l)
            {
                V r0 = S.Load(pr + i), r1 = S.Load(pr + i + l);
                a0 = S.Add(a0, S.Abs(S.Subtract(S.Load(pa + i), r0)));
                a1 = S.Add(a1, S.Abs(S.Subtract(S.Load(pa + i + l), r1)));
                b0 = S.Add(b0, S.Abs(S.Subtract(S.Load(pb + i), r0)));
                b1 = S.Add(b1, S.Abs(S.Subtract(S.Load(pb + i + l), r1)));
            }
            if (i + l <= n)
            {
                V r0 = S.Load(pr + i);
                a0 = S.Add(a0, S.Abs(S.Subtract(S.Load(pa + i), r0)));
                b0 = S.Add(b0, S.Abs(S.Subtract(S.Load(pb + i), r0)));
                i += l;
            }
            float s0 = S.Sum(S.Add(a0, a1)), s1 = S.Sum(S.Add(b0, b1));
            for (; i < n; i++)
            {
                s0 += MathF.Abs(pa[i] - pr[i]);
                s1 += MathF.Abs(pb[i] - pr[i]);
            }
            return (s0, s1);
        }
    }

    /// <summary>The k smallest (distance, index) pairs seen, ties to the lower index; a bounded max-heap.</summary>
    private sealed class TopK(int capacity)
    {
        private readonly float[] _distances = new float[capacity];
        private readonly int[] _indices = new int[capacity];
        private int _count;

        /// <summary>The distance a newcomer must beat (infinity until the heap is full).</summary>
        public float Threshold => _count < capacity ? float.PositiveInfinity : _distances[0];

        private bool Worse(int a, int b) => _distances[a] > _distances[b] || (_distances[a] == _distances[b] && _indices[a] > _indices[b]);

        public void Offer(float distance, int index)
        {
            if (_count < capacity)
            {
                _distances[_count] = distance;
                _indices[_count] = index;
                SiftUp(_count++);
                return;
            }
            // References arrive in increasing index order, so an equal key never displaces the root.
            if (!(distance < _distances[0])) return;
            _distances[0] = distance;
            _indices[0] = index;
            SiftDown(0);
        }

        private void SiftUp(int i)
        {
            while (i > 0)
            {
                int parent = (i - 1) / 2;
                if (!Worse(i, parent)) break;
                Swap(i, parent);
                i = parent;
            }
        }

        private void SiftDown(int i)
        {
            while (true)
            {
                int left = 2 * i + 1, right = left + 1, worst = i;
                if (left < _count && Worse(left, worst)) worst = left;
                if (right < _count && Worse(right, worst)) worst = right;
                if (worst == i) return;
                Swap(i, worst);
                i = worst;
            }
        }

        private void Swap(int a, int b)
        {
            (_distances[a], _distances[b]) = (_distances[b], _distances[a]);
            (_indices[a], _indices[b]) = (_indices[b], _indices[a]);
        }

        public (int[] Indices, float[] Distances) Sorted()
        {
            var order = Enumerable.Range(0, _count).OrderBy(i => _distances[i]).ThenBy(i => _indices[i]).ToArray();
            return (order.Select(i => _indices[i]).ToArray(), order.Select(i => _distances[i]).ToArray());
        }
    }
}
