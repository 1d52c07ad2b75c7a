"""What only the pages share: the cached workspace, the URL↔widget binder, dialogs and text helpers."""
