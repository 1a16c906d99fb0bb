namespace QuantPeft.Trainers.Data;

/// <summary>One turn of a conversation in a <c>messages</c> record.</summary>
/// <param name="Role"><c>system</c>, <c>user</c> or <c>assistant</c>.</param>
/// <param name="Content">The text of the turn.</param>
public sealed record ChatMessage(string Role, string Content)
{
    /// <summary>The roles a record may use; only <c>assistant</c> turns are trained on.</summary>
    public static IReadOnlyList<string> Roles { get; } = ["system", "user", "assistant"];
}
