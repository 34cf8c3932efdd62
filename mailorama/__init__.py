"""Mail-o-Rama: a personal mail server in one container, configured by four text files."""
