/* sneakerd shop window: the drop list (/) and one drop selling out live (/drops/{id}).
 *
 * No framework and no build step: ES modules straight from /static/, each owning one thing
 * (see the imports). The page is one more client of the REST API and the drop's WebSocket
 * (docs/API.md). This entry module sets up what both pages share (the header's account box
 * and the sign-in dialog) and starts the view named by `<body data-page>`.
 */

import { renderAccount } from "./account.js";
import { usePlaceholderForBrokenImages } from "./dom.js";
import { startDropView } from "./drop-view.js";
import { startListView } from "./list-view.js";
import { onSessionChange } from "./session.js";
import { setupSignIn } from "./signin-dialog.js";
import { messageFor } from "./words.js";

const VIEWS = { index: startListView, drop: startDropView };

usePlaceholderForBrokenImages();
setupSignIn();
onSessionChange(renderAccount);
renderAccount();
const view = VIEWS[document.body.dataset.page];
if (view) view();

/* For a console (and the browser tests): the sentence a shopper would see for an error code. */
window.sneakerd = Object.freeze({ messageFor });
