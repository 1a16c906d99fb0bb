using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.LqLora;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Checkpoints;

/// <summary>What <see cref="LqLoraCheckpointWriter.Run"/> wrote.</summary>
/// <param name="OutputFolder">The finished folder.</param>
/// <param name="Allocation">The allocator's answer (per-matrix configuration, total and average bits).</param>
/// <param name="Matrices">Per quantized weight: the chosen configuration and the stored error.</param>
/// <param name="CopiedTensors">Tensors copied unchanged.</param>
/// <param name="OutputBytes">Tensor bytes written.</param>
public sealed record LqLoraSummary(
    string OutputFolder, BitAllocation Allocation, IReadOnlyDictionary<string, LqMatrixRecord> Matrices, int CopiedTensors, long OutputBytes);

/// <summary>
/// <c>qpeft quantize MODEL --method lq-lora</c>: decomposes every attention/MLP projection as W ≈ Q + L1·L2 under
/// each candidate configuration, lets <see cref="BitAllocator"/> pick one configuration per matrix within the
/// average bit budget, and writes the chosen Q (packed), L1 and L2 (bf16) with the other tensors copied.
/// </summary>
/// <remarks>
/// Two passes over the projections, one tensor in memory at a time: the first measures the error of every
/// candidate (one full decomposition each), the second recomputes the chosen one (deterministic seeds) and
/// spools its tensors. Output goes to a temporary sibling folder renamed at the end and deleted on error, and
/// every input check runs before that folder exists, so a failed run leaves no output folder.
/// </remarks>
public static class LqLoraCheckpointWriter
{
    /// <summary>Quantizes <paramref name="modelFolder"/> into <paramref name="outputFolder"/>.</summary>
    /// <param name="modelFolder">A Hugging Face model folder.</param>
    /// <param name="outputFolder">Must not exist or be empty.</param>
    /// <param name="options">Budget, rank, block size.</param>
    /// <param name="maxShardBytes">Largest safetensors shard.</param>
    /// <param name="progress">Called with (phase and tensor, done, total).</param>
    /// <exception cref="QuantInputException">Missing config, an output folder that is not empty, a projection that is
    /// not a 2-D float matrix, a rank larger than a matrix allows, a matrix no candidate can block.</exception>
    public static LqLoraSummary Run(string modelFolder, string outputFolder, LqLoraOptions options, long maxShardBytes = 5_000_000_000L,
        Action<string, int, int>? progress = null)
    {
        if (!Directory.Exists(modelFolder)) throw new QuantInputException($"model folder '{modelFolder}' does not exist");
        string configPath = Path.Combine(modelFolder, "config.json");
        if (!File.Exists(configPath)) throw new QuantInputException($"'{modelFolder}' has no config.json; a model folder needs its config");
        string output = Path.GetFullPath(outputFolder);
        if (File.Exists(output) || (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any()))
            throw new QuantInputException($"output '{outputFolder}' already exists and is not an empty folder");
        JsonObject config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject
            ?? throw new QuantInputException($"'{configPath}' is not a JSON object");

        using var checkpoint = SafetensorsCheckpoint.Open(modelFolder);
        var targets = checkpoint.Tensors.Where(t => QuantizeOptions.IsLinearProjection(t.Name)).ToList();
        if (targets.Count == 0) throw new QuantInputException($"'{modelFolder}' has no attention or MLP projection weights to quantize");
        var candidates = targets.Select(t => CandidatesFor(t, options)).ToList();

        // Pass 1: the cost of every candidate on every matrix.
        var costs = new List<MatrixCandidates>(targets.Count);
        int total = targets.Count * options.Candidates.Count + targets.Count, done = 0;
        for (int i = 0; i < targets.Count; i++)
        {
            using var weight = ReadWeight(checkpoint, targets[i]);
            var row = new List<(LqQuantConfig, double)>();
            foreach (LqQuantConfig c in candidates[i])
            {
                progress?.Invoke($"{c}: {targets[i].Name}", ++done, total);
                using var d = LqStoredDecomposition.Create(weight, c, options.Rank, options.MaxIterations, options.Seed + (ulong)i, targets[i].Name);
                row.Add((c, d.Error * d.Error));
            }
            costs.Add(new MatrixCandidates(targets[i].Name, targets[i].ElementCount, row));
        }
        BitAllocation allocation = BitAllocator.Allocate(costs, options.BitsBudget);

        string temp = output.TrimEnd(Path.DirectorySeparatorChar) + ".qpeft-tmp-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(temp);
        try
        {
            using var spool = new SpooledTensorEntries(temp);
            var records = new Dictionary<string, LqMatrixRecord>();
            int copied = 0;
            foreach (SafetensorsTensorInfo t in checkpoint.Tensors)
            {
                int i = targets.FindIndex(x => x.Name == t.Name);
                if (i < 0)
                {
                    spool.AddCopy(checkpoint, t);
                    copied++;
                    continue;
                }
                LqQuantConfig chosen = allocation.Choices[i];
                progress?.Invoke($"writing {chosen}: {t.Name}", ++done, total);
                using var weight = ReadWeight(checkpoint, t);
                using var d = LqStoredDecomposition.Create(weight, chosen, options.Rank, options.MaxIterations, options.Seed + (ulong)i, t.Name);
                records[t.Name] = new LqMatrixRecord(chosen, d.Error, d.Iterations);
                spool.AddPieces(t.Name[..^".weight".Length], LqLoraSerializer.ToTensors(d.Quantized, d.L1, d.L2));
            }
            var result = spool.WriteShards(temp, maxShardBytes);
            config["quantization_config"] = LqLoraQuantizationConfig.Create(options, allocation, records);
            File.WriteAllText(Path.Combine(temp, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            foreach (string side in CheckpointQuantizer.SideFiles)
            {
                string src = Path.Combine(modelFolder, side);
                if (File.Exists(src)) File.Copy(src, Path.Combine(temp, side));
            }
            spool.Dispose();
            if (Directory.Exists(output)) Directory.Delete(output);
            Directory.Move(temp, output);
            return new LqLoraSummary(output, allocation, records, copied, result.TotalSize);
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    private static List<LqQuantConfig> CandidatesFor(SafetensorsTensorInfo t, LqLoraOptions options)
    {
        if (t.Rank != 2)
            throw new QuantInputException($"tensor '{t.Name}' has shape {t.ShapeText}; a quantized weight must be a 2-D matrix");
        if (t.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16))
            throw new QuantInputException($"tensor '{t.Name}' has dtype {t.DType}; only F32, F16 and BF16 weights can be quantized");
        long maxRank = Math.Min(t.Dim(0), t.Dim(1));
        if (options.Rank > maxRank)
            throw new QuantInputException($"--rank {options.Rank} is larger than tensor '{t.Name}' {t.ShapeText} allows (at most {maxRank})");
        var fits = options.Candidates.Where(c => t.ElementCount % ((long)c.BlockSize0 * c.BlockSize1) == 0).ToList();
        if (fits.Count == 0)
        {
            long group = (long)options.Candidates[0].BlockSize0 * options.Candidates[0].BlockSize1;
            throw new QuantInputException(
                $"tensor '{t.Name}' {t.ShapeText} has {t.ElementCount} elements, not a multiple of B0·B1 = {group}; use a smaller --blocksize");
        }
        return fits;
    }

    private static Tensor ReadWeight(SafetensorsCheckpoint checkpoint, SafetensorsTensorInfo t)
    {
        float[] values = checkpoint.ReadFloat32(t.Name);
        return torch.tensor(values, t.Shape);
    }
}
