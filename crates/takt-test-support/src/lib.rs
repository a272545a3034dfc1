//! Fakes and fixtures for tests: temp git repositories, fake tracker, fake clock (dev-dependency only).
