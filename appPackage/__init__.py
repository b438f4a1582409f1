"""The Teams app package: manifest template, icons and the build command (`python -m appPackage.build`)."""
