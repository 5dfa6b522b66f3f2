"""check_public: to be written (issue 4)."""
