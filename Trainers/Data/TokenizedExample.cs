namespace QuantPeft.Trainers.Data;

/// <summary>
/// One record as token ids with a flag per token: <c>IsTarget[i]</c> says whether the model is trained
/// to predict token i (completion and assistant tokens, their EOS; never BOS or prompt tokens).
/// </summary>
/// <param name="Tokens">Token ids, BOS and EOS included.</param>
/// <param name="IsTarget">Whether each token is a loss target.</param>
/// <param name="Line">Source line (for error messages), 0 if none.</param>
public sealed record TokenizedExample(int[] Tokens, bool[] IsTarget, int Line)
{
    /// <summary>Number of loss targets.</summary>
    public int TargetCount => IsTarget.Count(t => t);
}
