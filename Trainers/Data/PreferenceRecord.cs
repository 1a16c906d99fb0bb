namespace QuantPeft.Trainers.Data;

/// <summary>
/// One validated line of a preference dataset: a prompt (plain text, or a conversation rendered through the
/// model's chat template) and two answers to it, the preferred one and the dispreferred one.
/// </summary>
public sealed record PreferenceRecord
{
    /// <summary>The <c>prompt</c> field (plain-text form), else null.</summary>
    public string? Prompt { get; init; }

    /// <summary>The <c>messages</c> field (conversation form): the turns before the answer, else null.</summary>
    public IReadOnlyList<ChatMessage>? Messages { get; init; }

    /// <summary>The preferred answer (the assistant's text).</summary>
    public required string Chosen { get; init; }

    /// <summary>The dispreferred answer.</summary>
    public required string Rejected { get; init; }

    /// <summary>1-based line number in the source file, 0 for records built in code.</summary>
    public int Line { get; init; }

    /// <summary>A plain-text pair.</summary>
    public static PreferenceRecord FromPrompt(string prompt, string chosen, string rejected) =>
        new() { Prompt = prompt, Chosen = chosen, Rejected = rejected };
}
