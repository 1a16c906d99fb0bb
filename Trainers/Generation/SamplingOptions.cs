namespace QuantPeft.Trainers.Generation;

/// <summary>How the next token is chosen from the logits.</summary>
/// <param name="Temperature">0: greedy (the largest logit, deterministic); otherwise the logits are divided by it before sampling.</param>
/// <param name="TopK">Keep only the K most likely tokens (0: all).</param>
/// <param name="TopP">Keep the smallest set of most likely tokens whose probability reaches P (1: all).</param>
/// <param name="RepetitionPenalty">Tokens already in the context have positive logits divided and negative ones multiplied by this (1: off), as transformers does.</param>
/// <param name="Seed">Seed of the sampler's random numbers; the same seed gives the same text.</param>
public sealed record SamplingOptions(double Temperature = 0, int TopK = 0, double TopP = 1, double RepetitionPenalty = 1, int Seed = 0)
{
    /// <summary>Checks the ranges; the message names the flag.</summary>
    /// <exception cref="ArgumentException">A value out of range.</exception>
    public void Validate()
    {
        if (!(Temperature >= 0) || double.IsInfinity(Temperature)) throw new ArgumentException($"--temperature: expected a number ≥ 0, found {Temperature}");
        if (TopK < 0) throw new ArgumentException($"--top-k: expected an integer ≥ 0, found {TopK}");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"--top-p: expected a number in (0, 1], found {TopP}");
        if (!(RepetitionPenalty > 0) || double.IsInfinity(RepetitionPenalty)) throw new ArgumentException($"--repetition-penalty: expected a number > 0, found {RepetitionPenalty}");
    }
}
