using QuantPeft.Formats;

namespace QuantPeft.Memory.Paging;

/// <summary>The pages one acquisition needs together do not fit in the pager's device budget.</summary>
public sealed class PagerBudgetException : QuantPeftException
{
    /// <summary>Creates the exception; the message names the pages, their bytes and the budget.</summary>
    public PagerBudgetException(string message) : base(message) { }
}
